"""Rate-distortion: ksc's presets against Draco with quadric decimation at the same bytes.

For every mesh of ../shared/meshes: each preset of ``--presets`` (small,
default, high: ``ksc.config.PRESETS``) is encoded with quantization-aware
fine-tuning; presets with the same network share one training (default and
high). The default network is also stored at 8 bits without fine-tuning (the
ablation). Each file is decoded at 256^3. For each ksc file size, the
rival is searched: for each Draco quantization in ``--draco-bits``, the
decimation ratio (fast-simplification) is bisected to the largest mesh whose
Draco file (DracoPy, compression level 10) fits the same bytes; the best
Chamfer-L1 over the quantizations is kept. Both are measured with
``ksc.metrics`` against the input. The default-preset .ksc is kept in
``benchmarks/.cache/default/`` for ``benchmarks/decode.py``.
Writes ``benchmarks/results/rd[-SUFFIX].{json,md}`` and ``rd[-SUFFIX]-all.png`` (a panel per mesh and one of the medians).
Run: ``.venv/bin/python benchmarks/rd.py`` (needs the ``bench`` extra: DracoPy, fast-simplification, matplotlib).
``--jobs N --threads T`` runs N meshes at a time with T torch threads each: the
errors and bytes are a lone run's (the encoder is deterministic), the encode
seconds are not (the table says how many ran at a time).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    CACHE,
    RESULTS,
    SHARED_MESHES,
    add_parallel_options,
    command_line,
    draco_file_at_budget,
    machine_description,
    map_in_order,
    markdown_table,
    results_name,
    set_torch_threads,
    shared_meshes,
    write_results,
)

from ksc.config import PRESETS, preset_options  # noqa: E402
from ksc.decoder import decode_mesh  # noqa: E402
from ksc.encoder import train_mesh  # noqa: E402
from ksc.meshio import load_mesh, write_atomic  # noqa: E402
from ksc.metrics import compare_meshes  # noqa: E402

DRACO_BITS = (8, 11, 14)
RESOLUTION = 256


def draco_at_budget(mesh, budget: int, quantizations) -> dict | None:
    """Best (lowest Chamfer-L1) Draco+decimation file of at most ``budget`` bytes, or None if none fits."""
    import DracoPy
    import trimesh

    best = None
    for bits in quantizations:
        found = draco_file_at_budget(mesh, budget, bits)
        if found is None:
            continue
        decoded = DracoPy.decode(found)
        candidate = trimesh.Trimesh(np.asarray(decoded.points), np.asarray(decoded.faces).reshape(-1, 3), process=False)
        error = compare_meshes(mesh, candidate)
        if best is None or error.chamfer_l1 < best["chamfer_l1"]:
            best = {"bytes": len(found), "draco_bits": bits, "faces": len(candidate.faces), **error.to_dict()}
    return best


def run_mesh(
    path: Path, presets, draco_bits, seed: int, uniform_share: float | None, keep_default: bool
) -> list[dict]:
    mesh = load_mesh(path)
    trainings = {}  # network config -> (trained network, training seconds)
    variants = [(name, True) for name in presets] + ([("default", False)] if "default" in presets else [])
    rows = []
    for name, fine_tune in variants:
        options = preset_options(name, seed=seed, uniform_share=uniform_share)
        if options.model not in trainings:
            start = time.perf_counter()
            trainings[options.model] = (train_mesh(mesh, options), time.perf_counter() - start)
        trained, train_s = trainings[options.model]
        start = time.perf_counter()
        result = trained.encode(options.weight_bits, fine_tune=fine_tune)
        quantize_s = time.perf_counter() - start
        if name == "default" and fine_tune and keep_default:
            target = CACHE / "default" / f"{path.stem}.ksc"
            target.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(target, result.data)
        error = compare_meshes(mesh, decode_mesh(result.data, RESOLUTION, faces=0))  # marching cubes, as in the tables
        row = {
            "mesh": path.name,
            "faces": len(mesh.faces),
            "codec": f"ksc {name}" + ("" if fine_tune else " no QAT"),
            "bits": options.weight_bits,
            "width": options.model.width,
            "qat": fine_tune,
            "bytes": len(result.data),
            "encode_s": train_s + quantize_s,
            **error.to_dict(),
        }
        rows.append(row)
        print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
        if fine_tune:
            rival = draco_at_budget(mesh, len(result.data), draco_bits)
            rival_row = {"mesh": path.name, "faces": len(mesh.faces), "codec": f"draco @ ksc {name}"}
            rival_row.update(rival or {"error": "no Draco file fits"})
            rows.append(rival_row)
            print(markdown_table(COLUMNS, [rival_row]).splitlines()[-1], flush=True)
    return rows


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("codec", "codec", "s"),
    ("bits", "bits", "d"),
    ("width", "width", "d"),
    ("bytes", "bytes", "d"),
    ("chamfer_l1", "Chamfer-L1", ".5f"),
    ("hausdorff", "Hausdorff", ".4f"),
    ("iou", "IoU", ".4f"),
    ("draco_bits", "Draco q", "d"),
    ("faces", "faces kept (Draco)", "d"),
    ("encode_s", "encode s", ".0f"),
    ("error", "error", "s"),
]


def verdicts(rows: list[dict], presets) -> list[dict]:
    """Per preset: on how many meshes ksc has the lower Chamfer-L1 than Draco at the same bytes."""
    summary = []
    for name in presets:
        ksc = {r["mesh"]: r for r in rows if r["codec"] == f"ksc {name}"}
        rival = {r["mesh"]: r for r in rows if r["codec"] == f"draco @ ksc {name}"}
        meshes = [m for m in ksc if m in rival]
        wins = [m for m in meshes if "chamfer_l1" not in rival[m] or ksc[m]["chamfer_l1"] < rival[m]["chamfer_l1"]]
        summary.append(
            {
                "setting": f"ksc {name} ({PRESETS[name].weight_bits}-bit, width {PRESETS[name].width})",
                "meshes": len(meshes),
                "ksc_wins": len(wins),
                "median_bytes": statistics.median(ksc[m]["bytes"] for m in meshes) if meshes else None,
                "median_ksc_cd": statistics.median(ksc[m]["chamfer_l1"] for m in meshes) if meshes else None,
                "median_draco_cd": statistics.median(rival[m].get("chamfer_l1", np.inf) for m in meshes) if meshes else None,
                "median_ksc_iou": statistics.median(ksc[m]["iou"] for m in meshes) if meshes else None,
                "median_encode_s": statistics.median(ksc[m]["encode_s"] for m in meshes) if meshes else None,
                "wins": ", ".join(wins),
            }
        )
    return summary


def rd_points(rows: list[dict], mesh: str, prefix: str) -> list[tuple[int, float]]:
    """(bytes, Chamfer-L1) of one mesh's ksc (fine-tuned) or Draco rows, by size."""
    return sorted(
        (r["bytes"], r["chamfer_l1"])
        for r in rows
        if r["mesh"] == mesh and r["codec"].startswith(prefix) and "no QAT" not in r["codec"] and "chamfer_l1" in r
    )


def plot(rows: list[dict], summary: list[dict], folder: Path, name: str = "rd") -> None:
    """One panel per mesh and a last panel with the medians over meshes, in ``NAME-all.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = {"ksc": "ksc (presets)", "draco": "Draco+decimation"}
    meshes = sorted({r["mesh"] for r in rows})
    columns = 4
    count = len(meshes) + 1
    figure, axes = plt.subplots((count + columns - 1) // columns, columns, figsize=(16, 3.6 * ((count + columns - 1) // columns)))
    axes = np.atleast_1d(axes).ravel()
    for axis, mesh in zip(axes, meshes, strict=False):
        for prefix, style in (("ksc", "o-"), ("draco", "s--")):
            points = rd_points(rows, mesh, prefix)
            if points:
                axis.plot(*zip(*points, strict=True), style, label=labels[prefix])
        axis.set_title(mesh, fontsize=9)
    overall = axes[len(meshes)]
    medians = [s for s in summary if s["meshes"]]
    if medians:
        sizes = [s["median_bytes"] for s in medians]
        overall.plot(sizes, [s["median_ksc_cd"] for s in medians], "o-", label=labels["ksc"])
        overall.plot(sizes, [s["median_draco_cd"] for s in medians], "s--", label=labels["draco"])
    overall.set_title(f"median over {len(meshes)} meshes", fontsize=9, fontweight="bold")
    for axis in axes[:count]:
        axis.set_xlabel("bytes")
        axis.set_ylabel("Chamfer-L1")
        axis.set_yscale("log")
        axis.legend(fontsize=7)
    for axis in axes[count:]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(folder / f"{name}-all.png", dpi=80)
    plt.close(figure)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=list(PRESETS))
    parser.add_argument("--draco-bits", type=int, nargs="+", default=list(DRACO_BITS))
    parser.add_argument("--only", nargs="*", help="Mesh file names to run (default: all).")
    parser.add_argument("--meshes", type=Path, default=SHARED_MESHES)
    parser.add_argument("--uniform-share", type=float, help="Share of uniform training samples (default: ksc's).")
    parser.add_argument("--seed", type=int, default=0, help="Encoder seed (default 0); others measure training noise.")
    parser.add_argument("--suffix", default="", help="Results go to rd-SUFFIX.*; the default-file cache is left alone.")
    add_parallel_options(parser, "Meshes")
    args = parser.parse_args(argv)
    import torch

    set_torch_threads(args.threads)
    machine = machine_description(torch.device("cpu"))
    if args.jobs > 1:
        machine += f", {args.jobs} meshes at a time"
    paths = [p for p in shared_meshes(args.meshes) if not args.only or p.name in args.only]
    task = functools.partial(
        run_mesh,
        presets=args.presets,
        draco_bits=args.draco_bits,
        seed=args.seed,
        uniform_share=args.uniform_share,
        keep_default=not args.suffix,
    )
    rows = []
    for mesh_rows in map_in_order(task, [(path,) for path in paths], args.jobs, args.threads):
        rows.extend(mesh_rows)
        save(rows, args, machine)


def save(rows, args, machine) -> None:
    summary = verdicts(rows, args.presets)
    name = results_name("rd", args.suffix)
    command = command_line()
    summary_columns = [
        ("setting", "setting", "s"),
        ("meshes", "meshes", "d"),
        ("ksc_wins", "ksc lower Chamfer-L1 than Draco", "d"),
        ("median_bytes", "median bytes", ".0f"),
        ("median_ksc_cd", "median ksc Chamfer-L1", ".5f"),
        ("median_draco_cd", "median Draco Chamfer-L1", ".5f"),
        ("median_ksc_iou", "median ksc IoU", ".4f"),
        ("median_encode_s", "median encode s", ".0f"),
        ("wins", "meshes where ksc wins", "s"),
    ]
    markdown = "\n".join(
        [
            "# Rate-distortion: ksc against Draco + quadric decimation at the same bytes",
            "",
            f"Machine: {machine}. Command: `{command.strip()}`. ksc decoded at {RESOLUTION}^3;",
            f"errors in the normalized frame of the input (`ksc/metrics.py`). Plot: `{name}-all.png`.",
            "",
            markdown_table(summary_columns, summary),
            "",
            markdown_table(COLUMNS, rows),
        ]
    )
    write_results(name, {"machine": machine, "command": command, "rows": rows, "summary": summary}, markdown)
    plot(rows, summary, RESULTS, name)


if __name__ == "__main__":
    main()
