"""Decoder cost: coarse-to-fine versus dense grid evaluation at several resolutions.

For every mesh of ../shared/meshes, its default ``.ksc`` file (encoded once and
kept in ``benchmarks/.cache/default/``) is decoded in a fresh process per
(resolution, mode). Recorded: network evaluations, in-process seconds from
reading the file to writing the PLY, wall seconds of the whole process
(interpreter and torch start-up included), and the process's peak resident
memory. Dense evaluation is slow, so by default it runs at every resolution
only for the meshes named by ``--dense-everywhere`` and up to
``--dense-limit`` for the others.
Writes ``benchmarks/results/decode[-SUFFIX].{json,md}``.
Run: ``.venv/bin/python benchmarks/decode.py``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    CACHE,
    SHARED_MESHES,
    command_line,
    machine_description,
    markdown_table,
    results_name,
    run_measured,
    shared_meshes,
    write_results,
)

RESOLUTIONS = (128, 256, 512)


def child(ksc_path: str, resolution: int, mode: str, device_name: str, out_path: str) -> None:
    """Decode one file in this process and print what it cost as JSON (run through ``--child``)."""
    start = time.perf_counter()
    from ksc.decoder import decode
    from ksc.device import resolve_device
    from ksc.format import read_file
    from ksc.meshio import mesh_bytes, write_atomic

    imported = time.perf_counter()
    decoded = decode(read_file(ksc_path), resolution, resolve_device(device_name), dense=mode == "dense")
    write_atomic(out_path, mesh_bytes(decoded.mesh, ".ply"))
    done = time.perf_counter()
    extraction = decoded.extraction
    print(
        json.dumps(
            {
                "import_s": imported - start,
                "decode_s": done - imported,
                "evaluations": extraction.evaluations,
                "active_blocks": extraction.active_blocks,
                "total_blocks": extraction.total_blocks,
                "faces": len(decoded.mesh.faces),
            }
        )
    )


def default_file(mesh_path: Path) -> Path:
    """The mesh's .ksc at default settings, encoded now if the cache lacks it."""
    target = CACHE / "default" / f"{mesh_path.stem}.ksc"
    if not target.is_file():
        from ksc.encoder import encode_mesh
        from ksc.meshio import load_mesh, write_atomic

        print(f"encoding {mesh_path.name} (default settings) into {target}", flush=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, encode_mesh(load_mesh(mesh_path)).data)
    return target


def measure(ksc_path: Path, resolution: int, mode: str, device: str) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "decoded.ply"
        run = run_measured([__file__, "--child", str(ksc_path), str(resolution), mode, device, str(out)])
    if run["status"] != 0:
        return {"error": run["stderr"].strip().splitlines()[-1] if run["stderr"].strip() else f"exit {run['status']}"}
    row = json.loads(run["stdout"].strip().splitlines()[-1])
    row.update({"process_s": run["seconds"], "peak_mib": run["peak_mib"]})
    return row


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", nargs=5, metavar=("KSC", "RES", "MODE", "DEVICE", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--resolutions", type=int, nargs="+", default=list(RESOLUTIONS))
    parser.add_argument("--dense-limit", type=int, default=256, help="Largest resolution decoded densely for every mesh.")
    parser.add_argument("--dense-everywhere", nargs="*", default=["bunny.obj"], help="Meshes decoded densely at all resolutions.")
    parser.add_argument("--only", nargs="*", help="Mesh file names to run (default: all).")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--suffix", default="")
    parser.add_argument("--meshes", type=Path, default=SHARED_MESHES)
    args = parser.parse_args(argv)
    if args.child:
        ksc_path, resolution, mode, device, out = args.child
        child(ksc_path, int(resolution), mode, device, out)
        return

    import torch

    from ksc.device import resolve_device

    machine = machine_description(resolve_device(args.device))
    rows = []
    for mesh_path in shared_meshes(args.meshes):
        if args.only and mesh_path.name not in args.only:
            continue
        ksc_path = default_file(mesh_path)
        for resolution in args.resolutions:
            modes = ["band"]
            if resolution <= args.dense_limit or mesh_path.name in args.dense_everywhere:
                modes.append("dense")
            for mode in modes:
                row = {"mesh": mesh_path.name, "resolution": resolution, "mode": mode, "bytes": ksc_path.stat().st_size}
                row.update(measure(ksc_path, resolution, mode, args.device))
                if "evaluations" in row:
                    row["dense_share"] = row["evaluations"] / resolution**3
                rows.append(row)
                print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
        save(rows, args, machine, torch.get_num_threads())


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("resolution", "grid", "d"),
    ("mode", "mode", "s"),
    ("evaluations", "network evaluations", ",d"),
    ("dense_share", "share of dense", ".3f"),
    ("decode_s", "decode s (read to written PLY)", ".2f"),
    ("process_s", "process s (with start-up)", ".2f"),
    ("peak_mib", "peak MiB", ".0f"),
    ("faces", "faces", ",d"),
    ("error", "error", "s"),
]


def summarize(rows: list[dict]) -> list[dict]:
    """Medians per (resolution, mode) over the meshes, and the time ratio against the lowest resolution."""
    groups: dict[tuple[int, str], list[dict]] = {}
    for row in rows:
        if "decode_s" in row:
            groups.setdefault((row["resolution"], row["mode"]), []).append(row)
    summary = []
    for (resolution, mode), members in sorted(groups.items()):
        summary.append(
            {
                "resolution": resolution,
                "mode": mode,
                "meshes": len(members),
                "evaluations": int(statistics.median(r["evaluations"] for r in members)),
                "dense_share": statistics.median(r["dense_share"] for r in members),
                "decode_s": statistics.median(r["decode_s"] for r in members),
                "process_s": statistics.median(r["process_s"] for r in members),
                "peak_mib": max(r["peak_mib"] for r in members),
            }
        )
    return summary


def save(rows, args, machine, threads) -> None:
    summary = summarize(rows)
    command = command_line()
    summary_columns = [
        ("resolution", "grid", "d"),
        ("mode", "mode", "s"),
        ("meshes", "meshes", "d"),
        ("evaluations", "median evaluations", ",d"),
        ("dense_share", "median share of dense", ".3f"),
        ("decode_s", "median decode s", ".2f"),
        ("process_s", "median process s", ".2f"),
        ("peak_mib", "largest peak MiB", ".0f"),
    ]
    markdown = "\n".join(
        [
            "# Decoder: coarse-to-fine (band) versus dense grid evaluation",
            "",
            f"Machine: {machine}. Command: `{command.strip()}`. Each decode ran in a fresh process.",
            "'decode s' runs from reading the .ksc to a written binary PLY, after imports; 'process s' is the whole",
            "process, Python and torch start-up included. Peak memory is the process's maximum resident set.",
            "",
            "## Medians",
            "",
            markdown_table(summary_columns, summary),
            "",
            "## Every decode",
            "",
            markdown_table(COLUMNS, rows),
        ]
    )
    name = results_name("decode", args.suffix)
    write_results(name, {"machine": machine, "command": command, "rows": rows, "summary": summary}, markdown)


if __name__ == "__main__":
    main()
