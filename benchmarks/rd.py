"""Rate-distortion: ksc's presets against the full rival (Draco after two decimators, every quantization).

For every mesh of both mesh folders (``common.MESH_FOLDERS``) and each preset of ``--presets``: the .ksc
file is read from ``benchmarks/.cache/PRESET/`` when one made with the same options is there, else encoded
and kept there. It is decoded as ``ksc decode`` does by default (192^3, decimated to twice the source's
faces) and scored with ``ksc.mesh.metrics`` against the input. The rival (``benchmarks/rival.py``) is searched at
the file's bytes with every quantization 7-14 after each decimator, and along a dense curve of budgets from
2 to 16 KB; the BD-rate (``rival.bd_rate``) compares ksc's preset points with that curve.
Writes ``benchmarks/results/rd[-SUFFIX].{json,md}`` and ``rd[-SUFFIX]-all.png``.
Run: ``.venv/bin/python -m benchmarks.rd --jobs 2 --threads 1`` (needs the ``bench`` extra).
``--jobs N --threads T`` runs N meshes at a time with T torch threads each: errors and bytes are a lone
run's (the encoder is deterministic), encode seconds are not.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from benchmarks.common import (
    CACHE,
    RESULTS,
    add_parallel_options,
    both_folders,
    command_line,
    machine_description,
    map_in_order,
    markdown_table,
    results_name,
    set_torch_threads,
    write_results,
)
from benchmarks.rival import CURVE_BUDGETS, CachedRival, bd_rate
from ksc.decoding.pipeline import decode_mesh
from ksc.encoding.config import PRESETS, preset_options
from ksc.errors import KscInputError
from ksc.format import read_container
from ksc.mesh.io import load_mesh, write_atomic
from ksc.mesh.metrics import compare_meshes

METRICS = ("chamfer_l1", "hausdorff", "p99", "normal_error", "iou")


def cached_or_encoded(path: Path, preset: str, options, keep: bool) -> tuple[bytes, float | None]:
    """The preset's file of ``path`` from the cache when its header shows the same options, else a new encode
    (kept in the cache when ``keep``); with the encode's seconds (None for a cached file)."""
    target = CACHE / preset / f"{path.stem}.ksc"
    if target.exists():
        data = target.read_bytes()
        if _made_with(data, options):
            return data, None
    from ksc.encoding.pipeline import encode_mesh

    start = time.perf_counter()
    data = encode_mesh(load_mesh(path), options).data
    seconds = time.perf_counter() - start
    if keep:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, data)
    return data, seconds


def _made_with(data: bytes, options) -> bool:
    """Whether a file's header records ``options``' network (spheres up to its count), bits, seed and training."""
    container = read_container(data)
    meta = container.meta
    model = dict(meta["model"])
    wanted = options.model.to_dict()
    if model.pop("spheres") > wanted.pop("spheres") or model != wanted:
        return False
    encoder = meta["encoder"]
    bits = {getattr(t.codec, "bits", None) for t in container.tensors if t.name != "spheres"}
    return (
        encoder.get("seed") == options.seed
        and encoder.get("steps") == options.train.steps
        and encoder.get("qat_steps") == options.qat_steps
        and encoder.get("distance") == options.distance
        and bits == {options.weight_bits}
    )


def run_mesh(path: Path, presets, seed: int, keep: bool) -> dict:
    """Rows of one mesh: each preset's file and the rival at its bytes; the rival's dense curve; BD-rate."""
    mesh = load_mesh(path)
    folder = path.parent.name
    rows = []
    rival = CachedRival(path, mesh)
    for name in presets:
        options = replace(preset_options(name), seed=seed)
        try:
            data, encode_s = cached_or_encoded(path, name, options, keep)
        except KscInputError as error:
            rows.append({"mesh": path.name, "folder": folder, "preset": name, "error": str(error)})
            print(f"{path.name} {name}: {error}", flush=True)
            continue
        ours = compare_meshes(mesh, decode_mesh(data))
        theirs = rival.best(len(data))
        row = {"mesh": path.name, "folder": folder, "faces": len(mesh.faces), "preset": name, "bytes": len(data)}
        row.update({"encode_s": encode_s, **ours.to_dict()})
        if theirs is None:
            row["error"] = "no Draco file fits"
        else:
            row.update({f"draco_{key}": value for key, value in theirs.items()})
            for metric in METRICS[:-1]:
                row[f"{metric}_ratio"] = row[metric] / theirs[metric] if theirs[metric] > 0 else float("inf")
        rows.append(row)
        print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
    curve = rival.curve()
    for point in curve:
        point["mesh"] = path.name
    ours_points = [(r["bytes"], r["chamfer_l1"]) for r in rows if "chamfer_l1" in r]
    theirs_points = [(p["bytes"], p["chamfer_l1"]) for p in curve] + [
        (r["draco_bytes"], r["draco_chamfer_l1"]) for r in rows if "draco_bytes" in r
    ]
    rate = bd_rate(ours_points, theirs_points)
    summary = {"mesh": path.name, "folder": folder, "bd_rate": None if rate is None else rate[0]}
    summary["bd_kind"] = None if rate is None else rate[1]
    return {"rows": rows, "curve": curve, "bd": summary}


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("preset", "preset", "s"),
    ("bytes", "bytes", "d"),
    ("chamfer_l1", "Chamfer-L1", ".5f"),
    ("draco_chamfer_l1", "Draco Chamfer-L1", ".5f"),
    ("p99", "p99", ".4f"),
    ("draco_p99", "Draco p99", ".4f"),
    ("normal_error", "normal °", ".2f"),
    ("draco_normal_error", "Draco normal °", ".2f"),
    ("hausdorff", "Hausdorff", ".4f"),
    ("draco_hausdorff", "Draco Hausdorff", ".4f"),
    ("iou", "IoU", ".4f"),
    ("draco_bytes", "Draco bytes", "d"),
    ("draco_decimator", "decimator", "s"),
    ("draco_draco_bits", "Draco q", "d"),
    ("draco_faces", "Draco faces", "d"),
    ("error", "error", "s"),
]


def verdicts(rows: list[dict], bds: list[dict], presets) -> list[dict]:
    """Per folder and preset: on how many meshes ksc beats the rival in each metric, and median ratios and BD-rate."""
    summary = []
    for folder in sorted({r["folder"] for r in rows}):
        rates = [b["bd_rate"] for b in bds if b["folder"] == folder and b["bd_rate"] is not None]
        for name in presets:
            scored = [r for r in rows if r["folder"] == folder and r["preset"] == name and "draco_chamfer_l1" in r]
            if not scored:
                continue
            entry = {"folder": folder, "preset": name, "meshes": len(scored)}
            for metric in ("chamfer_l1", "normal_error", "p99", "hausdorff"):
                entry[f"{metric}_wins"] = sum(r[metric] < r[f"draco_{metric}"] for r in scored)
                entry[f"{metric}_ratio"] = statistics.median(r[f"{metric}_ratio"] for r in scored)
            entry["median_bytes"] = statistics.median(r["bytes"] for r in scored)
            entry["bd_rate"] = statistics.median(rates) if rates else None
            entry["chamfer_wins_list"] = ", ".join(r["mesh"] for r in scored if r["chamfer_l1"] < r["draco_chamfer_l1"])
            summary.append(entry)
    return summary


SUMMARY_COLUMNS = [
    ("folder", "folder", "s"),
    ("preset", "preset", "s"),
    ("meshes", "meshes", "d"),
    ("median_bytes", "median bytes", ".0f"),
    ("chamfer_l1_wins", "lower Chamfer-L1", "d"),
    ("chamfer_l1_ratio", "median Chamfer ratio", ".3f"),
    ("normal_error_wins", "lower normal error", "d"),
    ("normal_error_ratio", "median normal ratio", ".3f"),
    ("p99_wins", "lower p99", "d"),
    ("p99_ratio", "median p99 ratio", ".3f"),
    ("hausdorff_wins", "lower Hausdorff", "d"),
    ("bd_rate", "median BD-rate", "+.1%"),
    ("chamfer_wins_list", "meshes with lower Chamfer-L1", "s"),
]
CURVE_COLUMNS = [
    ("mesh", "mesh", "s"),
    ("budget", "budget", "d"),
    ("bytes", "bytes", "d"),
    ("chamfer_l1", "Chamfer-L1", ".5f"),
    ("p99", "p99", ".4f"),
    ("normal_error", "normal °", ".2f"),
    ("decimator", "decimator", "s"),
    ("draco_bits", "q", "d"),
    ("faces", "faces", "d"),
    ("tried", "pairs tried", "d"),
]
BD_COLUMNS = [("mesh", "mesh", "s"), ("folder", "folder", "s"), ("bd_rate", "BD-rate", "+.1%"), ("bd_kind", "how", "s")]


def plot(rows: list[dict], curves: list[dict], name: str) -> None:
    """One panel per mesh: Draco's dense curve and ksc's presets, Chamfer-L1 against bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    meshes = sorted({r["mesh"] for r in rows})
    columns = 5
    lines = (len(meshes) + columns - 1) // columns
    figure, axes = plt.subplots(lines, columns, figsize=(18, 3.2 * lines))
    axes = np.atleast_1d(axes).ravel()
    for axis, mesh in zip(axes, meshes, strict=False):
        curve = sorted((p["bytes"], p["chamfer_l1"]) for p in curves if p["mesh"] == mesh)
        if curve:
            axis.plot(*zip(*curve, strict=True), "s--", label="Draco (best decimation, q)")
        ours = sorted((r["bytes"], r["chamfer_l1"]) for r in rows if r["mesh"] == mesh and "chamfer_l1" in r)
        if ours:
            axis.plot(*zip(*ours, strict=True), "o-", label="ksc presets")
        axis.set_title(mesh, fontsize=9)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("bytes")
        axis.set_ylabel("Chamfer-L1")
        axis.legend(fontsize=6)
    for axis in axes[len(meshes) :]:
        axis.axis("off")
    figure.tight_layout()
    figure.savefig(RESULTS / f"{name}-all.png", dpi=70)
    plt.close(figure)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=["default"])
    parser.add_argument("--only", nargs="*", help="Mesh file names to run (default: all).")
    parser.add_argument("--seed", type=int, default=0, help="Encoder seed (default 0); others measure training noise.")
    parser.add_argument("--suffix", default="", help="Results go to rd-SUFFIX.*; new files stay out of the cache.")
    add_parallel_options(parser, "Meshes")
    args = parser.parse_args(argv)
    import torch

    set_torch_threads(args.threads)
    machine = machine_description(torch.device("cpu"))
    if args.jobs > 1:
        machine += f", {args.jobs} meshes at a time"
    paths = both_folders(args.only)
    task = functools.partial(run_mesh, presets=args.presets, seed=args.seed, keep=not args.suffix)
    rows, curves, bds = [], [], []
    for result in map_in_order(task, [(path,) for path in paths], args.jobs, args.threads):
        rows.extend(result["rows"])
        curves.extend(result["curve"])
        bds.append(result["bd"])
        save(rows, curves, bds, args, machine)


def save(rows, curves, bds, args, machine) -> None:
    summary = verdicts(rows, bds, args.presets)
    name = results_name("rd", args.suffix)
    command = command_line()
    markdown = "\n".join(
        [
            "# Rate-distortion: ksc against Draco after the best decimation, at the same bytes",
            "",
            f"Machine: {machine}. Command: `{command.strip()}`. ksc decoded as `ksc decode` does by default;",
            "the rival searched with both decimators and every quantization 7-14 (`benchmarks/rival.py`).",
            f"Errors in the normalized frame of the input (`ksc/mesh/metrics.py`). Plot: `{name}-all.png`.",
            "Ratios are ksc / Draco (below 1: ksc better); BD-rate below 0: ksc needs fewer bytes for the same",
            "Chamfer-L1 (with one preset it is the byte difference at ksc's Chamfer-L1 on Draco's curve;",
            "`at least`: ksc is worse than Draco's smallest file of the curve, so the true figure is larger).",
            "",
            markdown_table(SUMMARY_COLUMNS, summary),
            "",
            "## Per mesh, at ksc's bytes",
            "",
            markdown_table(COLUMNS, rows),
            "",
            "## BD-rate per mesh",
            "",
            markdown_table(BD_COLUMNS, bds),
            "",
            f"## Draco's dense curve (budgets {', '.join(str(b) for b in CURVE_BUDGETS)} bytes)",
            "",
            markdown_table(CURVE_COLUMNS, curves),
        ]
    )
    payload = {"machine": machine, "command": command, "rows": rows, "curves": curves, "bd_rates": bds, "summary": summary}
    write_results(name, payload, markdown)
    plot(rows, curves, name)


if __name__ == "__main__":
    main()
