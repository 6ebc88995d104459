"""Where a default encode spends its time: seconds per stage, and a training step against what the CPU can do.

Each mesh is loaded and encoded with the default options (or ``--preset``'s) on ``--threads`` training cores (default: the
CLI's, ``ksc.encoding.threads.training_threads``), torch on one thread, and the
encoder's own stage timings (``ksc.encoding.pipeline.STAGES``: repair, normalize, key spheres, the training points'
distances and signs and the rest of their sampling, training, step allocation, fine-tuning, writing, the
self-check) are tabulated with the loading. A second table counts the floating-point work of one training
step of the default network (forward and backward at batch 2048, ``torch.utils.flop_counter``: matrix
products only; the sines, cosines, SiLUs and the optimizer's update are extra) and sets the step's measured rate
against one thread's rate on a large float32 matrix product times the training cores, the most this CPU's BLAS
gets out of them.
Writes ``benchmarks/results/encode-profile[-SUFFIX].{json,md}``.
Run: ``.venv/bin/python -m benchmarks.encode_profile --only bunny.obj dragon.obj homer.obj thingi_75496.obj``
(about 2-3 minutes per mesh on 2 cores; all meshes of both folders without ``--only``).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from benchmarks.common import both_folders, command_line, machine_description, markdown_table, results_name, write_results
from ksc.encoding.config import PRESETS, EncodeOptions, preset_options
from ksc.encoding.pipeline import STAGES, encode_mesh
from ksc.encoding.threads import training_threads
from ksc.errors import KscError
from ksc.mesh.io import load_mesh

REFERENCE_SIZE = 1024
"""Side of the square float32 matrix product that measures one thread's rate."""


def profile_mesh(path: Path, options: EncodeOptions, threads: int) -> dict:
    """Seconds of loading and of every encode stage of ``path``, with the total wall time."""
    start = time.perf_counter()
    mesh = load_mesh(path)
    loaded = time.perf_counter()
    row = {"mesh": path.name, "folder": path.parent.name, "faces": len(mesh.faces), "loading": loaded - start}
    try:
        result = encode_mesh(mesh, options, threads=threads)
    except KscError as error:
        return {**row, "error": str(error)}
    row.update({stage: result.timings.get(stage, 0.0) for stage in STAGES})
    row["total"] = time.perf_counter() - start
    row["ms_per_step"] = 1e3 * row["training"] / options.train.steps
    return row


def step_flops(options: EncodeOptions) -> float:
    """Floating-point operations of the matrix products of one training step (forward and backward)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ksc.models.network import KeySphereNet

    generator = torch.Generator().manual_seed(0)
    model = KeySphereNet(options.model, torch.rand(options.model.spheres, 4, generator=generator) * 0.5)
    points = torch.rand(options.train.batch_size, 3, generator=generator) * 2 - 1
    with FlopCounterMode(display=False) as counter:
        model(points).abs().mean().backward()
    return float(counter.get_total_flops())


def reference_gflops(size: int = REFERENCE_SIZE, repeats: int = 5) -> float:
    """One thread's best rate on a ``size`` x ``size`` float32 matrix product, in GFLOP/s."""
    import torch

    a, b = torch.rand(size, size), torch.rand(size, size)
    a @ b  # warm-up
    best = min(_timed_product(a, b) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed_product(a, b) -> float:
    start = time.perf_counter()
    a @ b
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="Mesh file names to run (default: every mesh of both folders).")
    parser.add_argument("--suffix", default="", help="Results go to encode-profile-SUFFIX.{json,md}.")
    parser.add_argument("--preset", choices=list(PRESETS), default="default", help="Encode with this preset's options.")
    parser.add_argument("--threads", type=int, default=None, help="Training cores (default: the CLI's).")
    args = parser.parse_args(argv)
    threads = training_threads(args.threads)
    import torch

    torch.set_num_threads(1)
    options = preset_options(args.preset)
    paths = both_folders(args.only)
    rows = []
    for path in paths:
        rows.append(profile_mesh(path, options, threads))
        print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}" for k, v in rows[-1].items()), flush=True)
    done = [r for r in rows if "total" in r]
    stages = ["loading", *STAGES]
    medians = {stage: statistics.median(r[stage] for r in done) for stage in [*stages, "total", "ms_per_step"]} if done else {}
    flops = step_flops(options)
    peak = reference_gflops() * threads
    step_rate = flops / (medians["ms_per_step"] * 1e-3) / 1e9 if done else None
    work = {
        "step_mflop": flops / 1e6,
        "median_ms_per_step": medians.get("ms_per_step"),
        "step_gflops": step_rate,
        "reference_gflops": peak,
        "share_of_reference": step_rate / peak if step_rate else None,
    }
    machine = machine_description(torch.device("cpu"))
    command = command_line()
    shares = [{"stage": s, "median_s": medians[s], "share": medians[s] / medians["total"]} for s in stages] if done else []
    columns = [("mesh", "mesh", "s"), ("faces", "faces", "d")] + [(s, s, ".1f") for s in stages] + [("total", "total s", ".1f")]
    columns.append(("error", "error", "s"))
    markdown = "\n".join(
        [
            f"# Where a{'n' if args.preset[0] in 'aeiou' else ''} {args.preset} encode spends its time",
            "",
            f"Machine: {machine}; {threads} training core(s), torch on one thread, one encode at a time. Command: `{command}`.",
            "Seconds per stage (`ksc.encoding.pipeline.STAGES`), medians over the meshes, and each stage's share of the",
            "median total:",
            "",
            markdown_table([("stage", "stage", "s"), ("median_s", "median s", ".2f"), ("share", "share", ".1%")], shares),
            "",
            f"One training step of the {args.preset} preset's network (batch {options.train.batch_size}) against"
            f" {threads} times one thread's best on a"
            f" {REFERENCE_SIZE}^2 float32 matrix product (matrix products only; the sines, cosines, SiLUs and the"
            " optimizer's update add work the count leaves out):",
            "",
            markdown_table(
                [
                    ("step_mflop", "MFLOP per step", ".1f"),
                    ("median_ms_per_step", "median ms per step", ".2f"),
                    ("step_gflops", "step GFLOP/s", ".2f"),
                    ("reference_gflops", "matrix product GFLOP/s", ".1f"),
                    ("share_of_reference", "share", ".1%"),
                ],
                [work],
            ),
            "",
            markdown_table(columns, rows),
        ]
    )
    payload = {"machine": machine, "command": command, "threads": threads, "rows": rows, "medians": medians, "step_work": work}
    write_results(results_name("encode-profile", args.suffix), payload, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
