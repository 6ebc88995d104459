"""Residual start (the paper's eq. 2 bound): does the network reach the default's error in fewer steps
when it learns a correction to the key spheres' own distance bound instead of the whole field?

For each mesh the encoder's training samples (default mix, seed 0) are drawn once, and the default network
is trained (``ksc.encoding.train.fit``, two slices as ``ksc encode``) on them in three ways: the plain field for
``--steps`` steps and for ``--long`` steps (the default's count), and, for every ``--softness`` tau, the
residual ``sdf - b`` for ``--steps`` steps, where ``b(x) = tau * log sum_j exp((r_j - |x - c_j|) / tau)``
is a smooth maximum of the spheres' bounds (tau = 0: the hard maximum, which a union of spheres gives;
it has kinks the network must then undo). Each is scored by its mean absolute SDF error on 200 000 fresh
samples of the same mix (seed 1), all of them and the near-surface kind alone, the error that decides
the decoded surface. No file is written: the start was not adopted (the decoder would have to add ``b``).
Writes ``benchmarks/results/residual-start[-SUFFIX].{json,md}``.
Run: ``.venv/bin/python -m research.design.residual_start [--only dragon.obj ...]`` (about 2.5 minutes per mesh
and softness on 2 cores).
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

import torch

from benchmarks.common import (
    VALIDATION_POINTS,
    both_folders,
    command_line,
    fit_and_score,
    fitting_problem,
    machine_description,
    markdown_table,
    results_name,
    write_results,
)
from ksc.encoding.config import OPTIMIZERS, TrainConfig
from research.design import RESULTS

DEFAULT_MESHES = ("bunny.obj", "dragon.obj", "thingi_76277.obj", "homer.obj", "thingi_75665.obj")
CHUNK = 65536


def sphere_bound(spheres: torch.Tensor, points: torch.Tensor, softness: float) -> torch.Tensor:
    """``b`` (N,) at ``points`` (N, 3): the (smooth, for ``softness`` > 0) maximum over spheres (M, 4) of r - |x - c|."""
    parts = []
    for start in range(0, len(points), CHUNK):
        gap = spheres[:, 3].double() - torch.cdist(points[start : start + CHUNK].double(), spheres[:, :3].double())
        parts.append(gap.max(1).values if softness == 0 else softness * torch.logsumexp(gap / softness, 1))
    return torch.cat(parts).float()


def measure(path: Path, steps: int, long: int, softnesses: list[float], optimizer: str) -> list[dict]:
    problem = fitting_problem(path)
    spheres, samples, check = problem.spheres, problem.samples, problem.check
    train_points, check_points = torch.from_numpy(samples.points), torch.from_numpy(check.points)
    runs = [("plain", None, steps), ("plain", None, long)] + [(f"residual, tau {tau:g}", tau, steps) for tau in softnesses]
    rows = []
    for name, tau, count in runs:
        shift = None if tau is None else sphere_bound(spheres, train_points, tau).numpy()
        check_shift = torch.zeros(len(check_points)) if tau is None else sphere_bound(spheres, check_points, tau)
        score = fit_and_score(problem, TrainConfig(steps=count, optimizer=optimizer), shift, check_shift)
        start_error = float((check_shift - torch.from_numpy(check.sdf)).abs().mean())
        rows.append({"mesh": path.name, "start": name, "steps": count, "start_error": start_error, **score})
    short = rows[0]["near_error"]
    for row in rows:
        row["near_vs_plain"] = row["near_error"] / short
        row["near_vs_long"] = row["near_error"] / rows[1]["near_error"]
    return rows


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("start", "start", "s"),
    ("steps", "steps", "d"),
    ("start_error", "error of the start alone", ".4f"),
    ("error", "SDF error", ".6f"),
    ("near_error", "near-surface SDF error", ".6f"),
    ("near_vs_plain", "near / plain at the same steps", ".3f"),
    ("near_vs_long", "near / plain at the long count", ".3f"),
    ("seconds", "training s", ".1f"),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(DEFAULT_MESHES), help="Mesh file names to run.")
    parser.add_argument("--steps", type=int, default=9600, help="Steps of the short trainings (a third of the default's).")
    parser.add_argument("--long", type=int, default=TrainConfig.steps, help="Steps of the long plain training.")
    parser.add_argument("--softness", type=float, nargs="+", default=[0.02, 0.05], help="tau of the smooth maximum (0: hard).")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, default="adam", help="The trainings' (the table's: adam).")
    parser.add_argument("--suffix", default="", help="Results go to residual-start-SUFFIX.{json,md}.")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as an encode: torch on one thread, the second slice in a helper process
    rows = []
    for path in both_folders(args.only):
        for row in measure(path, args.steps, args.long, args.softness, args.optimizer):
            rows.append(row)
            print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
    medians = [
        {
            "start": start,
            "meshes": len(group),
            "near_vs_plain": statistics.median(r["near_vs_plain"] for r in group),
            "near_vs_long": statistics.median(r["near_vs_long"] for r in group),
            "worst_vs_plain": max(r["near_vs_plain"] for r in group),
        }
        for start in dict.fromkeys(f"{r['start']}, {r['steps']} steps" for r in rows)
        for group in [[r for r in rows if f"{r['start']}, {r['steps']} steps" == start]]
    ]
    machine = machine_description(torch.device("cpu"))
    command = command_line()
    median_columns = [
        ("start", "start", "s"),
        ("meshes", "meshes", "d"),
        ("near_vs_plain", "median near / plain, same steps", ".3f"),
        ("worst_vs_plain", "worst mesh", ".3f"),
        ("near_vs_long", "median near / plain, long", ".3f"),
    ]
    markdown = "\n".join(
        [
            "# Residual start: a correction to the key spheres' bound against the whole field",
            "",
            f"Machine: {machine}. Command: `{command.strip()}`. Default network and samples; errors are mean",
            f"absolute SDF errors on {VALIDATION_POINTS} fresh samples of the training mix (normalized frame). Ratio < 1:",
            "more accurate than the plain start.",
            "",
            markdown_table(median_columns, medians),
            "",
            markdown_table(COLUMNS, rows),
        ]
    )
    write_results(
        results_name("residual-start", args.suffix),
        {"machine": machine, "command": command, "medians": medians, "rows": rows},
        markdown,
        folder=RESULTS,
    )


if __name__ == "__main__":
    main()
