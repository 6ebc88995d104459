"""Key spheres: the coarse-to-fine candidate grid against the dense one, in time, queries and result.

For each mesh of both folders (repaired and normalized as the encoder does), the key spheres of the default
count are extracted twice from the same distance oracle: once coarse to fine (what the encoder does on a closed
surface, :mod:`ksc.encoding.spheres`) and once from the dense grid (what it does on an open one). The table gives each
way's seconds and distance queries and whether the two chose the same spheres, bit for bit. Open surfaces have
only the dense row. Writes ``benchmarks/results/key-spheres.{json,md}``.
Run: ``.venv/bin/python -m research.design.key_spheres [--only bunny.obj ...]`` (about three minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import trimesh

from benchmarks.common import both_folders, command_line, machine_description, markdown_table, results_name, write_results
from ksc.encoding.sampling import SignedDistance
from ksc.encoding.spheres import extract_key_spheres
from ksc.errors import KscInputError
from ksc.mesh.io import consistently_wound, load_mesh
from ksc.mesh.normalize import Transform
from ksc.models.config import ModelConfig
from research.design import RESULTS


class _Counted:
    """``oracle`` with its queries counted; ``closed`` as given (False: the dense grid)."""

    def __init__(self, oracle: SignedDistance, closed: bool):
        self.oracle, self.closed, self.queries = oracle, closed, 0

    def __call__(self, points):
        self.queries += len(points)
        return self.oracle(points)

    def unsigned(self, points):
        self.queries += len(points)
        return self.oracle.unsigned(points)


def _extract(oracle: SignedDistance, closed: bool, count: int):
    counted = _Counted(oracle, closed)
    start = time.perf_counter()
    try:
        spheres = extract_key_spheres(counted, count)
    except KscInputError as error:
        return None, time.perf_counter() - start, counted.queries, str(error)
    return spheres, time.perf_counter() - start, counted.queries, None


def measure(path: Path, count: int) -> dict:
    mesh, _ = consistently_wound(load_mesh(path))
    unit = trimesh.Trimesh(Transform.fit(mesh.vertices).to_unit(mesh.vertices), mesh.faces, process=False)
    oracle = SignedDistance(unit)
    row = {"mesh": path.name, "faces": len(mesh.faces), "closed": "yes" if oracle.closed else "no"}
    dense, row["dense_s"], row["dense_queries"], row["error"] = _extract(oracle, False, count)
    if oracle.closed and dense is not None:
        fine, row["fine_s"], row["fine_queries"], _ = _extract(oracle, True, count)
        row["speedup"] = row["dense_s"] / row["fine_s"]
        row["same"] = "yes" if fine.grid_size == dense.grid_size and np.array_equal(fine.spheres, dense.spheres) else "NO"
    if dense is not None:
        row["grid"] = dense.grid_size
    return row


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("faces", "faces", "d"),
    ("closed", "closed", "s"),
    ("grid", "grid", "d"),
    ("dense_s", "dense s", ".2f"),
    ("fine_s", "coarse to fine s", ".2f"),
    ("speedup", "speed-up", ".1f"),
    ("dense_queries", "dense queries", "d"),
    ("fine_queries", "coarse-to-fine queries", "d"),
    ("same", "same spheres", "s"),
    ("error", "error", "s"),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="Mesh file names to run (default: every mesh of both folders).")
    parser.add_argument("--spheres", type=int, default=ModelConfig.spheres, help="Key spheres to extract.")
    parser.add_argument("--suffix", default="", help="Results go to key-spheres-SUFFIX.{json,md}.")
    args = parser.parse_args(argv)
    import torch

    rows = []
    for path in both_folders(args.only):
        rows.append(measure(path, args.spheres))
        print(markdown_table(COLUMNS, [rows[-1]]).splitlines()[-1], flush=True)
    timed = [row for row in rows if "fine_s" in row]
    summary = {
        "closed_meshes": len(timed),
        "same_spheres": sum(row["same"] == "yes" for row in timed),
        "median_dense_s": statistics.median(row["dense_s"] for row in timed) if timed else None,
        "median_fine_s": statistics.median(row["fine_s"] for row in timed) if timed else None,
        "median_speedup": statistics.median(row["speedup"] for row in timed) if timed else None,
    }
    machine = machine_description(torch.device("cpu"))
    command = command_line()
    median = (
        f"On the {summary['closed_meshes']} closed meshes: the same spheres on {summary['same_spheres']}, "
        f"median {summary['median_dense_s']:.2f} s dense against {summary['median_fine_s']:.2f} s coarse to fine "
        f"(median speed-up {summary['median_speedup']:.1f}x)."
        if timed
        else "No closed mesh was run."
    )
    markdown = "\n".join(
        [
            "# Key spheres: coarse-to-fine candidate grid against the dense grid",
            "",
            f"Machine: {machine}. Command: `{command.strip()}`. {args.spheres} spheres from the exact distance oracle;",
            "queries are points given to it (a signed query costs a distance and a winding number, an unsigned one",
            "a distance). Open surfaces are extracted from the dense grid only, as the encoder does.",
            "",
            median,
            "",
            markdown_table(COLUMNS, rows),
        ]
    )
    payload = {"machine": machine, "command": command, "summary": summary, "rows": rows}
    write_results(results_name("key-spheres", args.suffix), payload, markdown, folder=RESULTS)


if __name__ == "__main__":
    main()
