"""Inside test: the two-pass winding number against one pass at libigl's recommended accuracy.

For each mesh of both folders (repaired and normalized as the encoder does), points of the training mix
without their distances (``--points``, the uniform share of a short training: surface samples plus
N(0, 0.005) and N(0, 0.03) offsets, uniform points in the decode box) are classified inside or outside
twice: by one pass of libigl's fast winding number at accuracy 2 (what ksc did before) and by
:class:`ksc.mesh.sampling.WindingNumber` (a pass at the fast accuracy, doubtful points again at 2). The table
gives both times, the share of doubtful points, the largest difference between the fast and the full
winding number, and how many points the two tests put on different sides (0 is the claim).
Writes ``benchmarks/results/winding.{json,md}``.
Run: ``.venv/bin/python -m research.design.winding [--only bunny.obj ...]`` (about two minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import igl
import numpy as np
import trimesh

from benchmarks.common import both_folders, command_line, machine_description, markdown_table, results_name, write_results
from ksc.encoding.config import SHORT_TRAINING_UNIFORM_SHARE
from ksc.encoding.pipeline import DOMAIN_BOUND
from ksc.encoding.sampling import ACCURACY, FAST_ACCURACY, SignedDistance, sample_counts
from ksc.mesh.io import consistently_wound, load_mesh
from ksc.mesh.normalize import Transform
from ksc.mesh.sampling import DOUBT, WindingNumber, sample_surface, spatial_order
from research.design import RESULTS


def training_like_points(mesh: trimesh.Trimesh, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` points (count, 3) of :func:`ksc.encoding.sampling.sample_mix` at the short trainings' uniform share,
    in Z-order."""
    parts = []
    for _, n, sigma in sample_counts(count, SHORT_TRAINING_UNIFORM_SHARE):
        if sigma is None:
            parts.append(rng.uniform(-DOMAIN_BOUND, DOMAIN_BOUND, size=(n, 3)))
        else:
            parts.append(sample_surface(mesh, n, rng) + rng.normal(scale=sigma, size=(n, 3)))
    points = np.concatenate(parts)
    return np.ascontiguousarray(points[spatial_order(points)])


def measure(path: Path, count: int) -> dict:
    mesh, _ = consistently_wound(load_mesh(path))
    unit = trimesh.Trimesh(Transform.fit(mesh.vertices).to_unit(mesh.vertices), mesh.faces, process=False)
    vertices = np.ascontiguousarray(unit.vertices, dtype=np.float64)
    faces = np.ascontiguousarray(unit.faces, dtype=np.int64)
    points = training_like_points(unit, count, np.random.default_rng(0))
    start = time.perf_counter()
    full = np.abs(igl.fast_winding_number(vertices, faces, points))
    one_pass = time.perf_counter() - start
    start = time.perf_counter()
    inside = WindingNumber(vertices, faces).inside(points)
    two_pass = time.perf_counter() - start
    hierarchy = igl.FastWindingNumberBVH()
    hierarchy.init(vertices, faces)
    fast = np.abs(hierarchy.winding_number(points, FAST_ACCURACY))
    return {
        "mesh": path.name,
        "faces": len(faces),
        "closed": "yes" if SignedDistance(unit).closed else "no",
        "one_pass_s": one_pass,
        "two_pass_s": two_pass,
        "speedup": one_pass / two_pass,
        "doubtful": float(np.mean(np.abs(fast - 0.5) < DOUBT)),
        "largest_gap": float(np.abs(fast - full).max()),
        "different": int(np.count_nonzero(inside != (full > 0.5))),
    }


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("faces", "faces", "d"),
    ("closed", "closed", "s"),
    ("one_pass_s", f"one pass at {ACCURACY:g}, s", ".2f"),
    ("two_pass_s", "two passes, s", ".2f"),
    ("speedup", "speed-up", ".1f"),
    ("doubtful", "doubtful share", ".4f"),
    ("largest_gap", f"largest |w({FAST_ACCURACY:g}) - w({ACCURACY:g})|", ".3f"),
    ("different", "points on different sides", "d"),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="Mesh file names to run (default: every mesh of both folders).")
    parser.add_argument("--points", type=int, default=250_000, help="Points per mesh (the fast preset's samples).")
    parser.add_argument("--suffix", default="", help="Results go to winding-SUFFIX.{json,md}.")
    args = parser.parse_args(argv)
    import torch

    rows = []
    for path in both_folders(args.only):
        rows.append(measure(path, args.points))
        print(markdown_table(COLUMNS, [rows[-1]]).splitlines()[-1], flush=True)
    summary = {
        "meshes": len(rows),
        "points": args.points * len(rows),
        "different": sum(row["different"] for row in rows),
        "one_pass_s": sum(row["one_pass_s"] for row in rows),
        "two_pass_s": sum(row["two_pass_s"] for row in rows),
        "median_speedup": statistics.median(row["speedup"] for row in rows) if rows else None,
        "largest_gap": max((row["largest_gap"] for row in rows), default=None),
    }
    machine = machine_description(torch.device("cpu"))
    command = command_line()
    markdown = "\n".join(
        [
            "# Inside test: two-pass winding number against one pass at accuracy 2",
            "",
            f"Machine: {machine}. Command: `{command.strip()}`. {args.points} points per mesh (surface samples with",
            f"N(0, 0.005) and N(0, 0.03) offsets, {SHORT_TRAINING_UNIFORM_SHARE:.0%} uniform), in Z-order. Two passes:",
            f"libigl's fast winding number at accuracy {FAST_ACCURACY:g}, then the points within {DOUBT:g} of 1/2",
            f"again at {ACCURACY:g}.",
            "",
            f"Over {summary['meshes']} meshes and {summary['points']} points: {summary['different']} on different sides; "
            f"{summary['one_pass_s']:.1f} s in one pass against {summary['two_pass_s']:.1f} s in two "
            f"(median speed-up {summary['median_speedup']:.1f}x); the fast pass was at most {summary['largest_gap']:.3f} off."
            if rows
            else "No mesh was run.",
            "",
            markdown_table(COLUMNS, rows),
        ]
    )
    payload = {"machine": machine, "command": command, "summary": summary, "rows": rows}
    write_results(results_name("winding", args.suffix), payload, markdown, folder=RESULTS)


if __name__ == "__main__":
    main()
