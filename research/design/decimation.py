"""Which decoded mesh to hand the user: marching cubes at some resolution, decimated to some face count, projected or not.

For every mesh of the given folders with a default ``.ksc`` in the cache
(``benchmarks/.cache/default/``, see ``decode.py``), each policy's mesh is
scored against the input (``ksc.mesh.metrics``: Chamfer-L1, p99, normal error)
and against the raw 256^3 marching-cubes mesh's scores. A policy is a grid
resolution, a target face count (a multiple of the source mesh's, as the file
records it; 0 keeps marching cubes) and whether the decimated vertices are
moved onto the zero level (one Newton step, before decimation). Decimation is
``ksc.decoding.surface.decimate`` (fast-simplification's quadric edge collapse).
Writes ``benchmarks/results/decimation[-SUFFIX].{json,md}``.
Run: ``.venv/bin/python -m research.design.decimation``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from benchmarks.common import (
    CACHE,
    MESH_FOLDERS,
    command_line,
    machine_description,
    markdown_table,
    results_name,
    shared_meshes,
    write_results,
)
from ksc.decoding.extract import extract_mesh
from ksc.decoding.pipeline import load_field, source_faces
from ksc.decoding.surface import decimate
from ksc.mesh.io import load_mesh
from ksc.mesh.metrics import compare_meshes
from research.design import RESULTS

POLICIES = [  # (resolution, faces as a multiple of the source's, project the marching-cubes vertices first)
    (256, 0, False),
    (256, 1, False),
    (256, 2, False),
    (256, 2, True),
    (192, 0, False),
    (192, 1, True),
    (192, 2, False),
    (192, 2, True),
    (160, 2, True),
]


def project_to_level(field, vertices, max_step: float):
    """One Newton step of the vertices (V, 3) onto the field's zero level, at most ``max_step`` long.

    Measured here and left out of the decoder: it moved the errors by under 1 % either way.
    """
    import numpy as np

    values, gradients = field.values_and_gradients(vertices)
    squared = (gradients.astype(np.float64) ** 2).sum(1)
    step = gradients * np.divide(values, squared, out=np.zeros_like(squared), where=squared > 1e-12)[:, None]
    length = np.linalg.norm(step, axis=1)
    long = length > max_step
    step[long] *= (max_step / length[long])[:, None]
    return vertices - step


def policy_name(resolution: int, factor: float, project: bool) -> str:
    if not factor:
        return f"{resolution}^3 marching cubes"
    return f"{resolution}^3, {factor:g}x source faces" + (", projected" if project else "")


def run_policy(decoded, extraction, factor: float, project: bool, source: int):
    """(mesh in original coordinates, seconds after extraction) of one policy."""
    import trimesh

    start = time.perf_counter()
    vertices, faces = extraction.vertices, extraction.faces
    if project:
        vertices = project_to_level(decoded.field, vertices, max_step=extraction.spacing)
    if factor:
        vertices, faces = decimate(vertices, faces, int(factor * source))
    seconds = time.perf_counter() - start
    mesh = trimesh.Trimesh(decoded.transform.to_original(vertices), faces, process=False)
    return mesh, seconds


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", type=Path, nargs="+", default=list(MESH_FOLDERS))
    parser.add_argument("--only", nargs="*", help="Mesh file names to run (default: all with a cached file).")
    parser.add_argument("--suffix", default="")
    parser.add_argument("--tables-only", action="store_true", help="Rewrite the Markdown from the saved JSON.")
    args = parser.parse_args(argv)
    import torch

    if args.tables_only:
        saved = json.loads((RESULTS / f"{results_name('decimation', args.suffix)}.json").read_text())
        save(saved["rows"], args, saved["machine"], saved["command"])
        return

    rows = []
    for folder in args.meshes:
        for mesh_path in shared_meshes(folder):
            ksc_path = CACHE / "default" / f"{mesh_path.stem}.ksc"
            if (args.only and mesh_path.name not in args.only) or not ksc_path.is_file():
                continue
            reference = load_mesh(mesh_path)
            decoded = load_field(ksc_path.read_bytes())
            source = source_faces(decoded.container)
            raw, extractions = None, {}
            for resolution, factor, project in POLICIES:
                if resolution not in extractions:
                    start = time.perf_counter()
                    extraction = extract_mesh(decoded.field, resolution, decoded.bound)
                    extractions[resolution] = (extraction, time.perf_counter() - start)
                extraction, extract_seconds = extractions[resolution]
                mesh, seconds = run_policy(decoded, extraction, factor, project, source)
                error = compare_meshes(reference, mesh)
                row = {
                    "mesh": mesh_path.name,
                    "folder": folder.name,
                    "policy": policy_name(resolution, factor, project),
                    "source_faces": source,
                    "faces": len(mesh.faces),
                    "extract_s": extract_seconds,
                    "seconds": seconds,
                    **error.to_dict(),
                }
                raw = raw or row
                for key in ("chamfer_l1", "p99", "normal_error"):
                    row[f"{key}_vs_raw"] = row[key] / raw[key]
                rows.append(row)
                print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
            save(rows, args, machine_description(torch.device("cpu")))


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("policy", "policy", "s"),
    ("source_faces", "source faces", ",d"),
    ("faces", "faces", ",d"),
    ("extract_s", "extract s", ".2f"),
    ("seconds", "then s", ".2f"),
    ("chamfer_l1", "Chamfer-L1", ".6f"),
    ("p99", "p99", ".5f"),
    ("normal_error", "normal error °", ".2f"),
    ("chamfer_l1_vs_raw", "Chamfer / raw", ".3f"),
    ("normal_error_vs_raw", "normal error / raw", ".3f"),
]


def summarize(rows: list[dict]) -> list[dict]:
    """Medians per (folder, policy), then per policy over both folders."""
    summary = []
    for folder in [*dict.fromkeys(r["folder"] for r in rows), None]:
        for policy in dict.fromkeys(r["policy"] for r in rows):
            members = [r for r in rows if r["policy"] == policy and folder in (None, r["folder"])]
            if members:
                summary.append({"folder": folder or "both", **_medians(policy, members)})
    return summary


def _medians(policy: str, members: list[dict]) -> dict:
    return {
        "policy": policy,
        "meshes": len(members),
        "faces_ratio": statistics.median(r["faces"] / r["source_faces"] for r in members),
        "extract_s": statistics.median(r["extract_s"] for r in members),
        "seconds": statistics.median(r["seconds"] for r in members),
        **{
            f"{key}_vs_raw": statistics.median(r[f"{key}_vs_raw"] for r in members)
            for key in ("chamfer_l1", "p99", "normal_error")
        },
        "worst_chamfer_vs_raw": max(r["chamfer_l1_vs_raw"] for r in members),
    }


def save(rows, args, machine, command: str | None = None) -> None:
    columns = [
        ("folder", "folder", "s"),
        ("policy", "policy", "s"),
        ("meshes", "meshes", "d"),
        ("faces_ratio", "faces / source (median)", ".2f"),
        ("extract_s", "extract s (median)", ".2f"),
        ("seconds", "then s (median)", ".2f"),
        ("chamfer_l1_vs_raw", "Chamfer / raw (median)", ".3f"),
        ("worst_chamfer_vs_raw", "Chamfer / raw (worst)", ".3f"),
        ("p99_vs_raw", "p99 / raw (median)", ".3f"),
        ("normal_error_vs_raw", "normal error / raw (median)", ".3f"),
    ]
    markdown = "\n".join(
        [
            "# Decoded mesh policies: resolution, decimation, projection onto the zero level",
            "",
            f"Machine: {machine}. Command: `{(command or command_line()).strip()}`. Files: the default `.ksc` of each mesh",
            "(benchmarks/.cache/default). Errors against the input mesh (ksc.mesh.metrics); '/ raw' divides by the",
            "256^3 marching-cubes mesh's. In-process seconds: 'extract s' for marching cubes on the band,",
            "'then s' for projection and decimation.",
            "",
            "## Medians over the meshes",
            "",
            markdown_table(columns, summarize(rows)),
            "",
            "## Every mesh",
            "",
            markdown_table(COLUMNS, rows),
        ]
    )
    payload = {"machine": machine, "command": command or command_line(), "rows": rows}
    write_results(results_name("decimation", args.suffix), payload, markdown, folder=RESULTS)


if __name__ == "__main__":
    main()
