"""Time of one training step: network shapes, and the sphere branch's two ways to sum.

A step is what :func:`ksc.train.fit` does per batch: draw 2048 of 1M points,
forward, L1 loss, backward, fused Adam. The points are random and the spheres
too (timing does not depend on the mesh). Every configuration runs ``--rounds``
times, interleaved with the others, so that the shared machine's drift hits
them alike; the table gives the median milliseconds per step.

The sphere-branch rows time the forward and backward of the point feature
alone, summed as ``(a @ z) / sum(a)`` (``KeySphereNet.point_features``, what the
model does) and as ``(a / sum(a)) @ z`` (through the normalized
``KeySphereNet.sphere_weights``, before ksc 0.10).
With ``--compile`` the default network is also timed under ``torch.compile`` (inductor), after its compile.
Writes ``benchmarks/results/train-step.{json,md}``.
Run: ``.venv/bin/python benchmarks/train_step.py [--threads 2]`` (about two minutes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import command_line, machine_description, markdown_table, results_name, set_torch_threads, write_results  # noqa: E402

from ksc.config import EncodeOptions, ModelConfig  # noqa: E402
from ksc.model import KeySphereNet  # noqa: E402
from ksc.train import adam, sdf_loss  # noqa: E402

SHAPES = {
    "5 x 34, 64 spheres (ksc 0.12's default)": ModelConfig(),
    "5 x 34, 128 spheres (ksc 0.10's default)": ModelConfig(spheres=128),
    "6 x 31, 128 spheres (ksc 0.9's default)": ModelConfig(layers=6, width=31, spheres=128),
    "4 x 39": ModelConfig(layers=4, width=39),
}
POINTS = 1_000_000
SPHERE_BRANCH_FORMS = {
    "sum, then normalize": lambda model, points: model.point_features(points),
    "normalize, then sum": lambda model, points: model.sphere_weights(points) @ model.sphere_features(),
}
"""The point feature (N, E) both ways: the model's, and the one it replaced."""


def _training_step(model: KeySphereNet, optimizer, points, target, batch: int, generator) -> None:
    index = torch.randint(len(target), (batch,), generator=generator)
    loss = sdf_loss(model(points[index]), target[index])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _sphere_branch(model: KeySphereNet, points, form) -> None:
    form(model, points).sum().backward()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="Torch threads (default: torch's own).")
    parser.add_argument("--steps", type=int, default=300, help="Steps per timed round.")
    parser.add_argument("--rounds", type=int, default=5, help="Interleaved rounds per configuration.")
    parser.add_argument("--suffix", default="", help="Results go to train-step-SUFFIX.{json,md}.")
    parser.add_argument(
        "--compile", action="store_true", help="Also time the default network under torch.compile (its compile time too)."
    )
    args = parser.parse_args(argv)
    set_torch_threads(args.threads)
    batch = EncodeOptions().train.batch_size
    generator = torch.Generator().manual_seed(0)
    points = torch.rand(POINTS, 3, generator=generator) * 2 - 1
    target = torch.rand(POINTS, generator=generator) - 0.5
    most = max(config.spheres for config in SHAPES.values())
    spheres = torch.rand(most, 4, generator=generator) * 0.5  # a shape with fewer spheres takes the first ones

    jobs = {}
    for name, config in SHAPES.items():
        model = KeySphereNet(config, spheres[: config.spheres])
        optimizer = adam(list(model.parameters()), 1e-3)
        jobs[f"training step, {name}"] = lambda m=model, o=optimizer: _training_step(m, o, points, target, batch, generator)
    compile_seconds = None
    if args.compile:
        model = KeySphereNet(ModelConfig(), spheres[: ModelConfig().spheres])
        optimizer = adam(list(model.parameters()), 1e-3)
        compiled = torch.compile(model)
        start = time.perf_counter()
        _training_step(compiled, optimizer, points, target, batch, generator)  # compiles forward and backward
        compile_seconds = time.perf_counter() - start
        name = f"training step, {next(iter(SHAPES))}, torch.compile (compiling took {compile_seconds:.0f} s)"
        jobs[name] = lambda m=compiled, o=optimizer: _training_step(m, o, points, target, batch, generator)
    branch_model = KeySphereNet(ModelConfig(), spheres[: ModelConfig().spheres])
    branch_points = points[:batch]
    for name, form in SPHERE_BRANCH_FORMS.items():
        jobs[f"sphere branch, {name}"] = lambda f=form: _sphere_branch(branch_model, branch_points, f)

    times: dict[str, list[float]] = {name: [] for name in jobs}
    for job in jobs.values():  # warm-up: allocator, kernels
        for _ in range(20):
            job()
    for _ in range(args.rounds):
        for name, job in jobs.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                job()
            times[name].append((time.perf_counter() - start) / args.steps * 1e3)
    rows = [
        {"what": name, "ms": statistics.median(values), "min_ms": min(values), "max_ms": max(values)}
        for name, values in times.items()
    ]

    columns = [("what", "what", "s"), ("ms", "median ms", ".3f"), ("min_ms", "min ms", ".3f"), ("max_ms", "max ms", ".3f")]
    machine = machine_description(torch.device("cpu"))
    command = command_line()
    table = markdown_table(columns, rows)
    print(table)
    markdown = "\n".join(
        [
            "# Training step time",
            "",
            f"Machine: {machine}. Command: `{command}`. Batch {batch} of {POINTS} points, {args.rounds} interleaved "
            f"rounds of {args.steps} steps per row; median, fastest and slowest round.",
            "",
            table,
        ]
    )
    payload = {"machine": machine, "command": command, "rows": rows, "compile_seconds": compile_seconds}
    write_results(results_name("train-step", args.suffix), payload, markdown)


if __name__ == "__main__":
    main()
