"""Decoding as a user meets it: ``ksc decode`` as a process against DracoPy's at the same bytes, and the mesh it gives.

For every mesh of ../shared/meshes and ../shared/meshes-wide, its default
``.ksc`` (encoded once and kept in ``benchmarks/.cache/default/``) is decoded
``--repeats`` times by ``ksc decode FILE OUT.ply`` in a fresh process with
default settings (wall time from start to the written file, interpreter start
included; the median is kept). Beside it, the full rival's Draco file at the same
bytes (``rival.CachedRival.file_at``: the decimator and quantization that ``rd.py``'s search found best there,
cached in ``benchmarks/.cache/rival/``) is decoded by a Python process that writes the same binary PLY
(``draco_decode.py``: DracoPy + trimesh). The full search costs minutes a mesh where that cache is empty:
``--rival-choice benchmarks/results/rd.json`` takes each mesh's decimator and quantization from an ``rd.py``
result instead (its best at the default's bytes then) and searches only the face count at this file's bytes.
Then, in this process, the default output and the raw marching-cubes mesh
(``faces=0``) are scored against the input (``ksc.mesh.metrics``).
Writes ``benchmarks/results/decode[-SUFFIX].{json,md}``.
Run: ``.venv/bin/python -m benchmarks.decode``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from benchmarks.common import (
    MESH_FOLDERS,
    command_line,
    compile_ksc,
    default_files,
    folder_medians,
    last_error_line,
    machine_description,
    markdown_table,
    results_name,
    run_measured,
    write_results,
)
from benchmarks.rival import CachedRival, DracoRival

DRACO_CHILD = Path(__file__).resolve().parent / "draco_decode.py"


def timed(argv: list[str], repeats: int) -> dict:
    """Median wall seconds and peak MiB of ``repeats`` fresh processes running ``argv``; the last one's output kept."""
    runs = [run_measured(argv) for _ in range(repeats)]
    failed = [run for run in runs if run["status"] != 0]
    if failed:
        return {"error": last_error_line(failed[0]["stderr"], failed[0]["status"])}
    return {"seconds": statistics.median(r["seconds"] for r in runs), "peak_mib": max(r["peak_mib"] for r in runs)}


def rival_file(mesh_path: Path, mesh, budget: int, choices: dict | None) -> bytes | None:
    """Draco's file at ``budget`` bytes: the full rival's (cached search), or with ``choices`` (mesh name ->
    an ``rd.py`` row) that row's decimator and quantization, with the face count searched at ``budget``."""
    if choices is None:
        return CachedRival(mesh_path, mesh).file_at(budget)
    choice = choices.get(mesh_path.name)
    if not choice or not choice.get("draco_decimator"):
        return None
    rival = DracoRival(mesh)
    faces = rival.fitting(choice["draco_decimator"], choice["draco_draco_bits"], budget)
    return None if faces is None else rival.file(choice["draco_decimator"], faces, choice["draco_draco_bits"])


def measure(mesh_path: Path, ksc_path: Path, repeats: int, choices: dict | None = None) -> dict:
    import trimesh

    from ksc.decoding.pipeline import STAGES, decode
    from ksc.mesh.io import load_mesh
    from ksc.mesh.metrics import compare_meshes

    mesh = load_mesh(mesh_path)
    data = ksc_path.read_bytes()
    row = {"mesh": mesh_path.name, "input_faces": len(mesh.faces), "ksc_bytes": len(data)}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "decoded.ply"
        ksc = timed(["ksc.cli", "decode", str(ksc_path), str(out), "-q"], repeats)
        row.update({f"ksc_{key}": value for key, value in ksc.items()})
        if out.is_file():
            row["ply_bytes"] = out.stat().st_size
        rival = rival_file(mesh_path, mesh, len(data), choices)
        if rival is not None:
            drc = Path(scratch) / "rival.drc"
            drc.write_bytes(rival)
            row["draco_bytes"] = len(rival)
            draco = timed([str(DRACO_CHILD), str(drc), str(Path(scratch) / "draco.ply")], repeats)
            row.update({f"draco_{key}": value for key, value in draco.items()})
    decoded, raw = decode(data), decode(data, faces=0)
    row.update({"faces": len(decoded.faces), "raw_faces": len(raw.faces)})
    row.update({f"stage_{stage}": decoded.timings.get(stage, 0.0) for stage in STAGES})
    if "ksc_seconds" in row:  # interpreter start, imports and writing the PLY: what the stages leave
        row["stage_rest"] = row["ksc_seconds"] - sum(decoded.timings.values())
    row["faces_ratio"] = row["faces"] / row["input_faces"]
    for name, result in (("default", decoded), ("raw", raw)):
        error = compare_meshes(mesh, trimesh.Trimesh(result.vertices, result.faces, process=False))
        row.update({f"{name}_chamfer_l1": error.chamfer_l1, f"{name}_normal_error": error.normal_error})
    row["chamfer_vs_raw"] = row["default_chamfer_l1"] / row["raw_chamfer_l1"]
    row["normal_vs_raw"] = row["default_normal_error"] / row["raw_normal_error"]
    if "ksc_seconds" in row and "draco_seconds" in row:
        row["time_vs_draco"] = row["ksc_seconds"] / row["draco_seconds"]
    return row


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("ksc_bytes", ".ksc bytes", ",d"),
    ("draco_bytes", ".drc bytes", ",d"),
    ("ksc_seconds", "ksc decode s", ".2f"),
    ("draco_seconds", "Draco in Python s", ".2f"),
    ("time_vs_draco", "time / Draco's", ".2f"),
    ("ksc_peak_mib", "ksc peak MiB", ".0f"),
    ("input_faces", "input faces", ",d"),
    ("raw_faces", "marching-cubes faces", ",d"),
    ("faces", "output faces", ",d"),
    ("faces_ratio", "output / input faces", ".2f"),
    ("chamfer_vs_raw", "Chamfer-L1 / raw's", ".3f"),
    ("normal_vs_raw", "normal error / raw's", ".3f"),
    ("ksc_error", "error", "s"),
]
STAGE_COLUMNS = [
    ("stage_reading", "reading", ".2f"),
    ("stage_network", "network", ".2f"),
    ("stage_marching cubes", "marching cubes", ".2f"),
    ("stage_decimation", "decimation", ".2f"),
    ("stage_normals", "normals", ".2f"),
    ("stage_rest", "start-up, imports, writing", ".2f"),
]
"""In-process seconds of one more default decode per stage (``ksc.decoding.pipeline.STAGES``); the rest is the process
time less them."""
MEDIANS = (
    "ksc_seconds",
    "draco_seconds",
    "time_vs_draco",
    "faces_ratio",
    "chamfer_vs_raw",
    "normal_vs_raw",
    *(key for key, _, _ in STAGE_COLUMNS),
)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", type=Path, nargs="+", default=list(MESH_FOLDERS))
    parser.add_argument("--only", nargs="*", help="Mesh file names to run (default: all).")
    parser.add_argument("--repeats", type=int, default=3, help="Fresh processes per decode; the median time is kept.")
    parser.add_argument("--suffix", default="")
    parser.add_argument(
        "--rival-choice",
        type=Path,
        help="An rd.py result (JSON): take Draco's decimator and quantization per mesh from it, search only faces.",
    )
    args = parser.parse_args(argv)
    choices = None
    if args.rival_choice:
        rows = json.loads(args.rival_choice.read_text())["rows"]
        choices = {row["mesh"]: row for row in rows if row.get("preset") == "default"}
    import torch

    machine = machine_description(torch.device("cpu"))
    compile_ksc()  # the Draco side's packages have their bytecode: so must ksc's
    rows = []
    for folder, mesh_path, ksc_path in default_files(args.meshes, args.only):
        if ksc_path is None:
            rows.append({"mesh": mesh_path.name, "folder": folder.name, "ksc_error": "ksc encode refuses this mesh"})
            continue
        row = {"folder": folder.name, **measure(mesh_path, ksc_path, args.repeats, choices)}
        rows.append(row)
        print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
        save(rows, args, machine)
    save(rows, args, machine)


def summarize(rows: list[dict]) -> list[dict]:
    summary = folder_medians(rows, MEDIANS, lambda row: "time_vs_draco" in row)
    for entry in summary:
        del entry["members"]
    return summary


def save(rows, args, machine) -> None:
    summary_columns = [
        ("folder", "folder", "s"),
        ("meshes", "meshes", "d"),
        ("ksc_seconds", "ksc decode s", ".2f"),
        ("draco_seconds", "Draco in Python s", ".2f"),
        ("time_vs_draco", "time / Draco's", ".2f"),
        ("faces_ratio", "output / input faces", ".2f"),
        ("chamfer_vs_raw", "Chamfer-L1 / raw's", ".3f"),
        ("normal_vs_raw", "normal error / raw's", ".3f"),
    ]
    command = command_line()
    summary = summarize(rows)
    markdown = "\n".join(
        [
            "# Decoding: `ksc decode` as a process, against Draco in Python at the same bytes",
            "",
            f"Machine: {machine}. Command: `{command.strip()}`. Every time is the median wall time of",
            f"{args.repeats} fresh processes, from start to the written binary PLY, Python's start-up included.",
            "ksc: `ksc decode FILE OUT.ply` with default settings (numpy, no torch). Draco: `draco_decode.py`",
            "(DracoPy + trimesh) on the full rival's file at the .ksc's bytes (the decimator and quantization",
            "that `rd.py`'s search found best there; `rival.CachedRival.file_at`)"
            + (
                f", here with the decimator and quantization of `{args.rival_choice}` and the faces searched at these bytes."
                if args.rival_choice
                else "."
            ),
            "Errors are against the input mesh (ksc.mesh.metrics); 'raw' is the marching-cubes mesh (`--faces 0`).",
            "",
            "## Medians",
            "",
            markdown_table(summary_columns, summary),
            "",
            "## Where a decode's time goes (seconds, medians)",
            "",
            "One more default decode per file in this process, timed per stage (`Decoded.timings`); the last column is",
            "the process's time less the stages: Python's start, the imports and writing the PLY.",
            "",
            markdown_table([("folder", "folder", "s"), *STAGE_COLUMNS], summary),
            "",
            "## Every mesh",
            "",
            markdown_table(COLUMNS, rows),
            "",
            "## Every mesh, seconds per stage",
            "",
            markdown_table([("mesh", "mesh", "s"), *STAGE_COLUMNS], [row for row in rows if "stage_network" in row]),
        ]
    )
    name = results_name("decode", args.suffix)
    write_results(name, {"machine": machine, "command": command, "rows": rows, "summary": summary}, markdown)


if __name__ == "__main__":
    main()
