"""Encode and decode every mesh of ../shared/meshes with the default settings.

Writes ``benchmarks/results/codec[-SUFFIX].{json,md}``: input bytes, binary PLY
bytes, .ksc bytes, ratios against both, encode and decode seconds, and the
errors of ``ksc.mesh.metrics``. Run: ``.venv/bin/python -m benchmarks.codec``
(``--device cuda`` on a GPU machine; ``--only bunny.obj`` for one mesh).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from pathlib import Path

from benchmarks.common import (
    RESULTS,
    SHARED_MESHES,
    command_line,
    machine_description,
    markdown_table,
    results_name,
    shared_meshes,
    write_results,
)
from ksc.decoding.config import DEFAULT_RESOLUTION
from ksc.decoding.pipeline import decode_mesh
from ksc.encoding.config import EncodeOptions
from ksc.encoding.device import resolve_device
from ksc.encoding.pipeline import encode_mesh
from ksc.errors import KscError
from ksc.mesh.io import load_mesh, mesh_bytes
from ksc.mesh.metrics import compare_meshes

MEDIANS = ("ksc_bytes", "chamfer_l1", "iou", "encode_s", "decode_s")
COLUMNS = [
    ("mesh", "mesh", "s"),
    ("faces", "faces", "d"),
    ("input_bytes", "input bytes", "d"),
    ("ply_bytes", "binary PLY bytes", "d"),
    ("ksc_bytes", ".ksc bytes", "d"),
    ("ratio_input", "ratio vs input", ".0f"),
    ("ratio_ply", "ratio vs PLY", ".0f"),
    ("encode_s", "encode s", ".1f"),
    ("decode_s", "decode s", ".2f"),
    ("chamfer_l1", "Chamfer-L1", ".5f"),
    ("hausdorff", "Hausdorff", ".4f"),
    ("iou", "IoU", ".4f"),
    ("error", "error", "s"),
]


def run_one(path: Path, device, resolution: int) -> dict:
    mesh = load_mesh(path)
    row = {"mesh": path.name, "faces": len(mesh.faces), "input_bytes": path.stat().st_size}
    row["ply_bytes"] = len(mesh_bytes(mesh, ".ply"))
    try:
        start = time.perf_counter()
        data = encode_mesh(mesh, EncodeOptions(), device).data
        row["encode_s"] = time.perf_counter() - start
        start = time.perf_counter()
        decoded = decode_mesh(data, resolution)
        mesh_bytes(decoded, ".ply")  # decoding ends with a written mesh
        row["decode_s"] = time.perf_counter() - start
    except KscError as error:
        row["error"] = str(error)
        return row
    row["ksc_bytes"] = len(data)
    row["ratio_input"] = row["input_bytes"] / len(data)
    row["ratio_ply"] = row["ply_bytes"] / len(data)
    row.update(compare_meshes(mesh, decoded).to_dict())
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu (the reference), cuda or auto")
    parser.add_argument("--resolution", type=int, default=DEFAULT_RESOLUTION)
    parser.add_argument("--only", nargs="*", help="mesh file names to run (default: all)")
    parser.add_argument("--suffix", default="", help="results file suffix, e.g. 'cuda'")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the tables (default benchmarks/results)")
    parser.add_argument("--meshes", type=Path, default=SHARED_MESHES, help="folder of meshes (default ../shared/meshes)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    device = resolve_device(args.device)
    paths = [p for p in shared_meshes(args.meshes) if not args.only or p.name in args.only]
    rows = []
    for path in paths:
        row = run_one(path, device, args.resolution)
        rows.append(row)
        print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
        # Rewritten after every mesh, so an interrupted run still leaves its table.
        written = save(rows, args, device)
    for path in written:
        print(f"wrote {path}")


def save(rows: list[dict], args, device) -> tuple[Path, Path]:
    done = [r for r in rows if "ksc_bytes" in r]
    summary = {key: statistics.median(r[key] for r in done) for key in MEDIANS} if done else {}
    machine = machine_description(device)
    command = command_line()
    markdown = "\n".join(
        [
            f"# ksc codec benchmark (default settings, decode at {args.resolution}^3)",
            "",
            f"Machine: {machine}. Command: `{command.strip()}`.",
            "Errors in the normalized frame of the input (see `ksc/mesh/metrics.py`).",
            "",
            markdown_table(COLUMNS, rows),
            "",
            f"Medians over {len(done)} meshes: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items()),
        ]
    )
    name = results_name("codec", args.suffix)
    payload = {"machine": machine, "command": command, "resolution": args.resolution, "rows": rows, "medians": summary}
    return write_results(name, payload, markdown, args.results)


if __name__ == "__main__":
    main()
