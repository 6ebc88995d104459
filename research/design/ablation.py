"""Ablation: which encoder choices earn their bytes.

Each variant changes one thing from the default preset (8-bit weights after
quantization-aware fine-tuning, 64 key spheres, DPFE branch with 8 features, 6 octaves
of Fourier features of the query point, 5 x 34 MLP, the default's SOAP steps of 2048 points) and is
encoded from scratch with its own training, decoded as ``ksc decode`` does by default and
measured with ``ksc.mesh.metrics`` against the input. A variant pays if it lowers Chamfer-L1 at no
more bytes, or keeps it at fewer bytes or less encode time. Where ``benchmarks/rd.py`` has
searched the full rival for a mesh (``benchmarks/.cache/rival/``), every row also gets its
BD-rate against Draco's curve (the byte difference at the row's Chamfer-L1), which compares
variants of different sizes on one scale. ``--variants`` and ``--suffix``
run a few variants into their own table. Quantization-aware fine-tuning is ablated in
``benchmarks/rd.py`` (8 bits with and without it, every mesh). Writes
``benchmarks/results/ablation[-SUFFIX].{json,md}``.
Run: ``.venv/bin/python -m research.design.ablation`` (about 8 minutes per mesh on 2 cores).
``--seeds 0 1 2`` repeats every encode with other seeds (one training's luck moves a thin
mesh's error by up to 40 %, README "Training noise"). On a machine with more cores,
``--jobs N --threads T`` encodes N variants at a
time with T torch threads each (encode times are then not those of a lone run).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common import (
    MESH_FOLDERS,
    add_parallel_options,
    command_line,
    machine_description,
    map_in_order,
    markdown_table,
    results_name,
    set_torch_threads,
    shared_meshes,
    write_results,
)
from benchmarks.rival import (
    CachedRival,
    bd_rate,
)
from ksc.decoding.pipeline import decode_mesh
from ksc.encoding.check import check_file
from ksc.encoding.config import PRESETS, EncodeOptions
from ksc.encoding.pipeline import train_mesh
from ksc.errors import KscError, KscInputError
from ksc.mesh.io import load_mesh
from ksc.mesh.metrics import compare_meshes
from research.design import RESULTS

DEFAULT_MESHES = ("bunny.obj", "dragon.obj")


def _variant(**changes) -> EncodeOptions:
    """Default options with ``model``/``train`` fields or top-level fields replaced."""
    base = EncodeOptions()
    model = {k[6:]: v for k, v in changes.items() if k.startswith("model_")}
    train = {k[6:]: v for k, v in changes.items() if k.startswith("train_")}
    top = {k: v for k, v in changes.items() if not k.startswith(("model_", "train_"))}
    return replace(base, model=replace(base.model, **model), train=replace(base.train, **train), **top)


VARIANTS = {
    "default": _variant(),
    "half the steps": _variant(train_steps=EncodeOptions().train.steps // 2),
    "4/3 of the steps": _variant(train_steps=EncodeOptions().train.steps * 4 // 3),
    "4x the steps (over the encode budget: is the fit capacity- or training-bound?)": _variant(
        train_steps=4 * EncodeOptions().train.steps
    ),
    "6-bit, width 40 (more weights, fewer bits)": _variant(weight_bits=6, model_layers=6, model_width=40),
    "64 spheres": _variant(model_spheres=64),
    "LPFE latents, 64 spheres": _variant(model_features="latent", model_spheres=64),
    "25 % uniform samples (default 10 %)": _variant(uniform_share=0.25),
    "40 % uniform samples": _variant(uniform_share=0.40),
    "7-bit, width 36 (about the default's bytes)": _variant(weight_bits=7, model_layers=6, model_width=36),
    "7-bit, 7 layers (about the default's bytes)": _variant(weight_bits=7, model_layers=7),
    "inverse weighting (d^-1)": _variant(model_weighting="inverse"),
    "inverse-square weighting (d^-2)": _variant(model_weighting="inverse_square"),
    "pysdf distances (approximate, ksc 0.3)": _variant(distance="pysdf"),
    "18000 steps of 4096": _variant(train_steps=18000, train_batch_size=4096),
    "12000 steps of 4096 (ksc 0.3's length)": _variant(train_steps=12000, train_batch_size=4096),
    "32000 steps of 1024": _variant(train_batch_size=1024, train_steps=32000),
    "peak learning rate 5e-3": _variant(train_learning_rate=5e-3),
    "peak learning rate 1e-2 (ksc 0.3)": _variant(train_learning_rate=1e-2),
    "peak learning rate 3e-2": _variant(train_learning_rate=3e-2),
    "256 spheres": _variant(model_spheres=256),
    "seed 1 (training noise)": _variant(seed=1),
    "5 % uniform samples (default 10 %)": _variant(uniform_share=0.05),
    "near samples sigma 0.0025 (default 0.005)": _variant(near_sigma=0.0025),
    "near samples sigma 0.0015": _variant(near_sigma=0.0015),
    "near samples sigma 0.01": _variant(near_sigma=0.01),
    # The variants below were measured against ksc 0.8's default (29 sphere features); they pin it, so that
    # their names (widths "about the default's bytes") still describe what they run. Every variant that names
    # a width also pins the 6 hidden layers it was sized for (ksc 0.10's default has 5).
    "no Fourier features, width 32 (ksc 0.7's default)": _variant(
        model_frequencies=0, model_layers=6, model_width=32, model_feature_dim=29
    ),
    "Fourier features, 4 octaves, width 32": _variant(model_frequencies=4, model_layers=6, model_width=32, model_feature_dim=29),
    "Fourier features, 6 octaves, width 32": _variant(model_frequencies=6, model_layers=6, model_width=32, model_feature_dim=29),
    "Fourier features, 4 octaves, width 30 (about the default's bytes)": _variant(
        model_frequencies=4, model_layers=6, model_width=30, model_feature_dim=29
    ),
    "Fourier features, 6 octaves, width 29 (ksc 0.8's default)": _variant(
        model_frequencies=6, model_layers=6, model_width=29, model_feature_dim=29
    ),
    "Fourier features, 8 octaves, width 28 (about the default's bytes)": _variant(
        model_frequencies=8, model_layers=6, model_width=28, model_feature_dim=29
    ),
    "7-bit, width 32 (about the default's bytes)": _variant(weight_bits=7, model_layers=6, model_width=32, model_feature_dim=29),
    "8 sphere features, width 31 (about the default's bytes)": _variant(model_feature_dim=8, model_layers=6, model_width=31),
    "5 layers, width 34 (about the default's bytes)": _variant(model_layers=5, model_width=34),
    "4 layers, width 39 (about the default's bytes)": _variant(model_layers=4, model_width=39),
    "7 layers, width 29 (about the default's bytes)": _variant(model_layers=7, model_width=29),
    "8 layers, width 27 (about the default's bytes)": _variant(model_layers=8, model_width=27),
    "8-value sphere latents, d^-2 weights, width 28 (about the default's bytes)": _variant(
        model_features="latent", model_feature_dim=8, model_weighting="inverse_square", model_layers=6, model_width=28
    ),
    "64 spheres, width 35, 27600 steps (about the default's bytes and time)": _variant(
        model_spheres=64, model_width=35, train_steps=27600
    ),
    "64 spheres, 28800 steps (about the default's time)": _variant(model_spheres=64, train_steps=28800),
    "width 39 (the high preset)": _variant(model_width=PRESETS["high"].width),
    "width 39, 128 spheres, 24000 steps (ksc 0.11's high preset)": _variant(model_width=39, model_spheres=128, train_steps=24000),
    "8-value sphere latents, d^-1 weights, width 28 (about the default's bytes)": _variant(
        model_features="latent", model_feature_dim=8, model_weighting="inverse", model_layers=6, model_width=28
    ),
    "equal steps (every tensor at its RMS step, ksc 0.12)": _variant(allocate_steps=False),
}


def run_variant(mesh, name: str, options: EncodeOptions, also_bits: tuple[int, ...] = ()) -> list[dict]:
    """One training, encoded at the variant's bits and at each of ``also_bits`` (rows named ``NAME @ B bits``),
    each file checked as :func:`ksc.encoding.pipeline.encode_mesh` checks it, decoded and measured; a network the encoder
    or decoder refuses (collapsed, no surface) is a row too."""
    start = time.perf_counter()
    try:
        trained = train_mesh(mesh, options)
    except KscError as failure:
        return [
            {
                "variant": name,
                "bytes": None,
                "parameters": None,
                "encode_s": time.perf_counter() - start,
                "chamfer_l1": float("inf"),
                "error": str(failure),
            }
        ]
    trained_s = time.perf_counter() - start
    rows = []
    for bits in (options.weight_bits, *also_bits):
        label = name if bits == options.weight_bits else f"{name} @ {bits} bits"
        row = {"variant": label, "bytes": None, "parameters": None}
        begun = time.perf_counter()
        try:
            result = trained.encode(bits)
            row.update(
                bytes=len(result.data), parameters=result.stored_parameters, encode_s=trained_s + time.perf_counter() - begun
            )
            check = check_file(result.data, trained.unit_mesh)
            if not check.passed:
                raise KscInputError(f"the encoded file does not describe the input ({check.describe()})")
            rows.append({**row, **compare_meshes(mesh, decode_mesh(result.data)).to_dict()})  # as `ksc decode` does
        except KscError as failure:
            row.setdefault("encode_s", trained_s)
            rows.append({**row, "chamfer_l1": float("inf"), "error": str(failure)})
    return rows


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("variant", "variant", "s"),
    ("seed", "seed", "d"),
    ("bytes", "bytes", "d"),
    ("parameters", "stored parameters", "d"),
    ("chamfer_l1", "Chamfer-L1", ".5f"),
    ("cd_vs_default", "Chamfer-L1 / default", ".2f"),
    ("bd_rate", "BD-rate vs Draco", "+.1%"),
    ("p99", "p99", ".4f"),
    ("normal_error", "normal °", ".2f"),
    ("iou", "IoU", ".4f"),
    ("encode_s", "encode s", ".0f"),
    ("error", "failure", "s"),
]


def summarize(rows: list[dict]) -> list[dict]:
    """Per variant: median bytes, Chamfer-L1 ratio to the default on the same mesh, encode time."""
    summary = []
    for name in dict.fromkeys(r["variant"] for r in rows):
        members = [r for r in rows if r["variant"] == name and "iou" in r]  # failed encodes have no metrics
        if members:
            summary.append(
                {
                    "variant": name,
                    "runs": len(members),
                    "median_bytes": statistics.median(r["bytes"] for r in members),
                    "median_ratio": statistics.median(r["cd_vs_default"] for r in members),
                    "median_bd_rate": _median_or_none([r.get("bd_rate") for r in members]),
                    "median_iou": statistics.median(r["iou"] for r in members),
                    "median_encode_s": statistics.median(r["encode_s"] for r in members),
                }
            )
    return summary


def _median_or_none(values: list) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def rival_bd_rate(mesh_name: str, size: int, chamfer_l1: float) -> float | None:
    """BD-rate of one (bytes, Chamfer-L1) point against the rival's results that ``rd.py`` cached for ``mesh_name``
    (its dense curve and its searched budgets; None where none are cached under today's rival settings)."""
    stored = CachedRival(Path(mesh_name), None).results
    theirs = [(p["bytes"], p["chamfer_l1"]) for p in [*stored.get("curve", []), *stored["best"].values()] if p]
    rate = bd_rate([(size, chamfer_l1)], theirs)
    return None if rate is None else rate[0]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(DEFAULT_MESHES), help="Mesh file names to run.")
    parser.add_argument("--variants", nargs="*", choices=list(VARIANTS), help="Variants to run (default: all).")
    parser.add_argument("--meshes", type=Path, nargs="+", default=list(MESH_FOLDERS), help="Mesh folders (default: both).")
    parser.add_argument("--suffix", default="", help="Results go to ablation-SUFFIX.{json,md}.")
    add_parallel_options(parser, "Encodes")
    parser.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0],
        help="Encode every mesh and variant once per seed (added to the variant's own), each compared with that seed's default.",
    )
    parser.add_argument(
        "--also-bits",
        type=int,
        nargs="*",
        default=[],
        help="Also encode every training at these weight bits (rows 'VARIANT @ B bits'): a short curve per training.",
    )
    parser.add_argument(
        "--reuse-default",
        metavar="NAME",
        help="Take the default rows from results/NAME.json (same machine and encoder) instead of encoding them again; "
        "NAME may be an ablation's results or rd.py's (its 'ksc default' rows, seed 0 unless its command gave --seed).",
    )
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="Rewrite results/ablation-SUFFIX.{json,md} from its own rows (new tables, no encodes).",
    )
    args = parser.parse_args(argv)
    if args.rescore:
        import json

        payload = json.loads((RESULTS / f"{results_name('ablation', args.suffix)}.json").read_text())
        save(payload["rows"], payload["machine"], results_name("ablation", args.suffix), payload["command"])
        return
    import torch

    set_torch_threads(args.threads)
    machine = machine_description(torch.device("cpu"))
    if args.jobs > 1:
        machine += f", {args.jobs} encodes at a time"
    names = args.variants or list(VARIANTS)
    if "default" not in names:
        names.insert(0, "default")
    paths = [p for folder in args.meshes for p in shared_meshes(folder) if p.name in args.only]
    reused = _default_rows(args.reuse_default) if args.reuse_default else {}
    tasks = [
        (path, name, seed)
        for path in paths
        for seed in args.seeds
        for name in names
        if not (name == "default" and (path.name, seed) in reused)
    ]
    stem = results_name("ablation", args.suffix)
    rows = []
    tasks = [(*task, tuple(args.also_bits)) for task in tasks]
    finished = (row for rows_of_task in map_in_order(_run_task, tasks, args.jobs, args.threads) for row in rows_of_task)
    results = _with_reused(finished, reused)
    for row in results:  # in task order, so each mesh and seed's default comes before its variants
        if row["variant"] == "default":
            baseline = row["chamfer_l1"]
        rate = rival_bd_rate(row["mesh"], row["bytes"], row["chamfer_l1"]) if row.get("bytes") and "iou" in row else None
        rows.append({**row, "cd_vs_default": row["chamfer_l1"] / baseline, "bd_rate": rate})
        print(markdown_table(COLUMNS, rows[-1:]).splitlines()[-1], flush=True)
        save(rows, machine, stem)


def _default_rows(name: str) -> dict[tuple[str, int], dict]:
    """The default rows of an earlier results/NAME.json, by (mesh, seed).

    An rd.py result (rows with a ``preset``) gives its ``default`` rows: the
    default preset is :class:`EncodeOptions`' defaults, what the ablation's default encodes,
    decoded as the ablation decodes.
    """
    import json

    path = RESULTS / f"{name}.json"
    if not path.is_file():
        raise SystemExit(f"--reuse-default: no {path} (give a results name such as ablation-average or rd)")
    payload = json.loads(path.read_text())
    rows = payload["rows"]
    if rows and "preset" in rows[0]:
        seed = _rd_seed(payload["command"])
        rows = [
            {"mesh": row["mesh"], "seed": seed, "variant": "default", "parameters": None, **_measured(row)}
            for row in rows
            if row["preset"] == "default" and "chamfer_l1" in row
        ]
    return {
        (row["mesh"], row.get("seed", 0)): {"seed": 0, **{k: v for k, v in row.items() if k != "cd_vs_default"}}
        for row in rows
        if row["variant"] == "default"
    }


def _rd_seed(command: str) -> int:
    """The ``--seed`` an rd.py command line gave (0 without one)."""
    words = command.split()
    return int(words[words.index("--seed") + 1]) if "--seed" in words else 0


def _measured(row: dict) -> dict:
    """The fields of an rd.py row that an ablation row has too."""
    return {key: row[key] for key in ("bytes", "encode_s", "chamfer_l1", "hausdorff", "iou", "p99", "normal_error") if key in row}


def _with_reused(results, reused: dict[tuple[str, int], dict]):
    """``results`` with each (mesh, seed)'s reused default row put before its first row."""
    for row in results:
        key = (row["mesh"], row["seed"])
        if key in reused:
            yield reused.pop(key)
        yield row


@functools.lru_cache(maxsize=1)
def _load(path: Path):
    return load_mesh(path)


def _run_task(path: Path, name: str, seed: int, also_bits: tuple[int, ...] = ()) -> list[dict]:
    options = replace(VARIANTS[name], seed=VARIANTS[name].seed + seed)
    return [{"mesh": path.name, "seed": seed, **row} for row in run_variant(_load(path), name, options, also_bits)]


def base_variant(label: str) -> str:
    """The variant a row's label names, without its `` @ B bits`` (rows of ``--also-bits``)."""
    return label.split(" @ ", 1)[0]


def curve_rates(rows: list[dict]) -> list[dict]:
    """Per mesh, seed and variant other than the default: the BD-rate of the variant's points (its bits and
    ``--also-bits``) against the default's points on the same mesh and seed (negative: fewer bytes for the same
    Chamfer-L1); None where either has no measured point."""
    rates = []
    for mesh, seed in dict.fromkeys((r["mesh"], r.get("seed", 0)) for r in rows):
        ours = [r for r in rows if r["mesh"] == mesh and r.get("seed", 0) == seed and "iou" in r]
        points = {}
        for r in ours:
            points.setdefault(base_variant(r["variant"]), []).append((r["bytes"], r["chamfer_l1"]))
        for name, variant_points in points.items():
            if name != "default" and "default" in points:
                rate = bd_rate(variant_points, points["default"])
                rates.append({"mesh": mesh, "seed": seed, "variant": name, "bd_vs_default": rate and rate[0]})
                rates[-1]["kind"] = rate and rate[1]
    return rates


def save(rows: list[dict], machine: str, name: str, command: str | None = None) -> None:
    command = command or command_line()
    summary_columns = [
        ("variant", "variant", "s"),
        ("runs", "runs (meshes x seeds)", "d"),
        ("median_bytes", "median bytes", ".0f"),
        ("median_ratio", "median Chamfer-L1 / default", ".2f"),
        ("median_bd_rate", "median BD-rate vs Draco", "+.1%"),
        ("median_iou", "median IoU", ".4f"),
        ("median_encode_s", "median encode s", ".0f"),
    ]
    summary = summarize(rows)
    rates = curve_rates(rows)
    curve_part = []
    if any(r["variant"] != base_variant(r["variant"]) for r in rows):
        medians = [
            {"variant": v, "median": _median_or_none([r["bd_vs_default"] for r in rates if r["variant"] == v])}
            for v in dict.fromkeys(r["variant"] for r in rates)
        ]
        curve_part = [
            "Each variant's points (its own bits and `--also-bits`) against the default's points on the same mesh:",
            "BD-rate over the Chamfer-L1 range both span (`rival.bd_rate`; negative: the variant needs fewer bytes).",
            "",
            markdown_table([("variant", "variant", "s"), ("median", "median BD-rate vs the default's curve", "+.1%")], medians),
            "",
            markdown_table(
                [("mesh", "mesh", "s"), ("variant", "variant", "s"), ("bd_vs_default", "BD-rate vs default", "+.1%")]
                + [("kind", "kind", "s")],
                rates,
            ),
            "",
        ]
    markdown = "\n".join(
        [
            "# Ablation: one change at a time from the default preset",
            "",
            f"Machine: {machine}. Command: `{command.strip()}`. Decoded as `ksc decode` does by default; errors",
            "in the normalized frame of the input (`ksc/mesh/metrics.py`). Ratio < 1: the variant is more accurate.",
            "BD-rate: bytes against Draco's (full rival, `rd.py`'s cached curve) at the row's Chamfer-L1; lower is better.",
            "",
            markdown_table(summary_columns, summary),
            "",
            *curve_part,
            markdown_table(COLUMNS, rows),
        ]
    )
    payload = {"machine": machine, "command": command, "rows": rows, "summary": summary, "curve_rates": rates}
    write_results(name, payload, markdown, folder=RESULTS)


if __name__ == "__main__":
    main()
