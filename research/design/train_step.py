"""Time of one training step: the written-out step against autograd, for a few network shapes.

A step is what :func:`ksc.encoding.train.fit` does per batch: draw 2048 of 1M points,
forward, L1 loss, backward, the optimizer (SOAP; Adam in the rows that say so).
``written out`` is :class:`ksc.encoding.backprop.FusedTrainer` (what ksc trains with since
0.16); ``..., N slices in N processes`` cuts each batch into N slices computed
side by side (the encode's ``--threads N``), ``... in turn`` the same slices one
after another in one process (a one-core batch task's way, to the same bits); the
written-out step runs on one torch thread. ``autograd`` is the same network through
:class:`ksc.models.network.KeySphereNet`, ``torch.autograd`` and ``torch.optim.Adam(fused=True)``
(what it trained with before). The points are random and the spheres too (timing
does not depend on the mesh). Every row runs ``--rounds`` times, interleaved with
the others, so that the shared machine's drift hits them alike; the table gives
the median milliseconds per step. The ``kernel`` rows time single operations behind the written-out
step's choices (milliseconds per call).
With ``--compile`` the default network's autograd step is also timed under ``torch.compile`` (inductor), after its compile.
Writes ``benchmarks/results/train-step.{json,md}``.
Run: ``.venv/bin/python -m research.design.train_step [--threads 1]`` (about two minutes).
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time

import torch

from benchmarks.common import command_line, machine_description, markdown_table, results_name, set_torch_threads, write_results
from ksc.encoding.backprop import FusedTrainer
from ksc.encoding.config import EncodeOptions
from ksc.encoding.train import sdf_loss
from ksc.models.config import ModelConfig
from ksc.models.network import KeySphereNet
from research.design import RESULTS

SHAPES = {
    "5 x 34, 64 spheres (the default)": ModelConfig(),
    "5 x 28 (small)": ModelConfig(width=28),
    "5 x 39 (high)": ModelConfig(width=39),
    "5 x 32 (a width MKL runs faster)": ModelConfig(width=32),
    "5 x 34, 128 spheres (ksc 0.10's default)": ModelConfig(spheres=128),
}
POINTS = 1_000_000


def _kernels(points: torch.Tensor, batch: int, generator) -> dict:
    """The single operations behind the written-out step's choices, each timed alone: (name, callable)."""
    table = torch.rand(POINTS, 103, generator=generator)  # the default network's per-point constants
    rows = torch.empty(batch, 103)
    x34, w34, out34 = torch.rand(batch, 34), torch.rand(34, 34), torch.empty(batch, 34)
    x32, w32, out32 = torch.rand(batch, 32), torch.rand(32, 32), torch.empty(batch, 32)
    weights, features = torch.rand(batch, 64), torch.rand(64, 8)

    def draw():
        return torch.randint(POINTS, (batch,), generator=generator)

    return {
        "gather 2048 rows of 103 floats, advanced indexing": lambda: table[draw()],
        "gather 2048 rows of 103 floats, index_select": lambda: torch.index_select(table, 0, draw(), out=rows),
        "product (2048 x 34) @ (34 x 34)": lambda: torch.mm(x34, w34, out=out34),
        "product (2048 x 32) @ (32 x 32)": lambda: torch.mm(x32, w32, out=out32),
        "product (2048 x 64) @ (64 x 8)": lambda: weights @ features,
        "the same, transposed: (8 x 64) @ (64 x 2048)": lambda: features.t() @ weights.t(),
    }


def _autograd_step(model: KeySphereNet, optimizer, points, target, batch: int, generator) -> None:
    index = torch.randint(len(target), (batch,), generator=generator)
    loss = sdf_loss(model(points[index]), target[index])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def _written_out_step(trainer: FusedTrainer, batch: int, generator) -> None:
    trainer.step(torch.randint(len(trainer.target), (batch,), generator=generator), 1e-3)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="Torch threads (default: torch's own).")
    parser.add_argument("--steps", type=int, default=300, help="Steps per timed round.")
    parser.add_argument("--rounds", type=int, default=5, help="Interleaved rounds per configuration.")
    parser.add_argument("--suffix", default="", help="Results go to train-step-SUFFIX.{json,md}.")
    parser.add_argument(
        "--parts", type=int, nargs="*", default=[2], help="Slice counts of the default network's step (FusedTrainer parts)."
    )
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
    trainers = []
    for name, config in SHAPES.items():
        model = KeySphereNet(config, spheres[: config.spheres])
        trainer = FusedTrainer(model, points, target, batch)
        jobs[f"written out, {name}"] = lambda t=trainer: _written_out_step(t, batch, generator)
        if config == ModelConfig():
            adam = FusedTrainer(model, points, target, batch, optimizer="adam")
            jobs[f"written out, {name}, Adam (ksc 0.15)"] = functools.partial(_written_out_step, adam, batch, generator)
            for parts in args.parts:
                sliced = FusedTrainer(model, points, target, batch, parts)
                jobs[f"written out, {name}, {parts} slices in {len(sliced.slices)} processes"] = functools.partial(
                    _written_out_step, sliced, batch, generator
                )
                in_turn = FusedTrainer(model, points, target, batch, parts)
                in_turn.close()
                jobs[f"written out, {name}, {parts} slices in turn"] = functools.partial(
                    _written_out_step, in_turn, batch, generator
                )
                sliced_adam = FusedTrainer(model, points, target, batch, parts, optimizer="adam")
                jobs[f"written out, {name}, {parts} slices in {len(sliced.slices)} processes, Adam"] = functools.partial(
                    _written_out_step, sliced_adam, batch, generator
                )
                trainers += [sliced, in_turn, sliced_adam]
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        jobs[f"autograd, {name}"] = lambda m=model, o=optimizer: _autograd_step(m, o, points, target, batch, generator)
    for name, kernel in _kernels(points, batch, generator).items():
        jobs[f"kernel: {name}"] = kernel
    compile_seconds = None
    if args.compile:
        model = KeySphereNet(ModelConfig(), spheres[: ModelConfig().spheres])
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
        compiled = torch.compile(model)
        start = time.perf_counter()
        _autograd_step(compiled, optimizer, points, target, batch, generator)  # compiles forward and backward
        compile_seconds = time.perf_counter() - start
        name = f"autograd, {next(iter(SHAPES))}, torch.compile (compiling took {compile_seconds:.0f} s)"
        jobs[name] = lambda m=compiled, o=optimizer: _autograd_step(m, o, points, target, batch, generator)

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
    for trainer in trainers:
        trainer.close()
    payload = {"machine": machine, "command": command, "rows": rows, "compile_seconds": compile_seconds}
    write_results(results_name("train-step", args.suffix), payload, markdown, folder=RESULTS)


if __name__ == "__main__":
    main()
