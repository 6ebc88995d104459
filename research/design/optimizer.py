"""Adam against SOAP: how many steps of each reach what near-surface error, and in how many seconds.

For each mesh the encoder's training samples (default mix, seed 0) and the default network are set up once
(``common.fitting_problem``); the network is then trained (``ksc.encoding.train.fit``, two slices as ``ksc encode``)
by each run of ``--runs`` (``OPTIMIZER:STEPS``, the default schedule stretched to that many steps) and scored
by its mean absolute SDF error on 200 000 fresh samples of the same mix (seed 1): all of them, and the
near-surface kind alone, the error that decides the decoded surface. The first run is the reference of the
ratios. No file is written (``encode_versions.py`` measures whole encodes).
Writes ``benchmarks/results/optimizer[-SUFFIX].{json,md}``.
Run: ``.venv/bin/python -m research.design.optimizer [--only bunny.obj ...] [--runs adam:28800 soap:9600 ...]``
(about 4 minutes per mesh with the default runs on 2 cores).
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

DEFAULT_MESHES = ("bunny.obj", "dragon.obj", "thingi_76277.obj", "homer.obj", "thingi_75665.obj", "rocker-arm.obj")
DEFAULT_RUNS = ("adam:28800", "soap:9600", "soap:12000", "soap:14400")


def parse_run(text: str) -> tuple[str, int]:
    optimizer, _, steps = text.partition(":")
    if optimizer not in OPTIMIZERS or not steps.isdigit():
        raise argparse.ArgumentTypeError(f"a run is OPTIMIZER:STEPS with OPTIMIZER one of {OPTIMIZERS}, got {text!r}")
    return optimizer, int(steps)


def measure(path: Path, runs: list[tuple[str, int]]) -> list[dict]:
    problem = fitting_problem(path)
    rows = []
    for optimizer, steps in runs:
        score = fit_and_score(problem, TrainConfig(steps=steps, optimizer=optimizer))
        rows.append({"mesh": path.name, "run": f"{optimizer}, {steps} steps", **score})
        print(markdown_table(COLUMNS, [rows[-1]]).splitlines()[-1], flush=True)
    for row in rows:
        row["near_vs_first"] = row["near_error"] / rows[0]["near_error"]
        row["seconds_vs_first"] = row["seconds"] / rows[0]["seconds"]
    return rows


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("run", "run", "s"),
    ("error", "SDF error", ".6f"),
    ("near_error", "near-surface SDF error", ".6f"),
    ("seconds", "training s", ".1f"),
]
RATIO_COLUMNS = [("near_vs_first", "near / first run's", ".3f"), ("seconds_vs_first", "time / first run's", ".3f")]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(DEFAULT_MESHES), help="Mesh file names to run.")
    runs = [parse_run(run) for run in DEFAULT_RUNS]
    parser.add_argument("--runs", nargs="+", type=parse_run, default=runs, help="OPTIMIZER:STEPS, the first the reference.")
    parser.add_argument("--suffix", default="", help="Results go to optimizer-SUFFIX.{json,md}.")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)  # as an encode: torch on one thread, the second slice in a helper process
    rows = [row for path in both_folders(args.only) for row in measure(path, args.runs)]
    medians = []
    for run in dict.fromkeys(row["run"] for row in rows):
        group = [row for row in rows if row["run"] == run]
        medians.append(
            {
                "run": run,
                "meshes": len(group),
                "near_vs_first": statistics.median(r["near_vs_first"] for r in group),
                "worst_vs_first": max(r["near_vs_first"] for r in group),
                "seconds_vs_first": statistics.median(r["seconds_vs_first"] for r in group),
            }
        )
    machine, command = machine_description(torch.device("cpu")), command_line()
    median_columns = [
        ("run", "run", "s"),
        ("meshes", "meshes", "d"),
        ("near_vs_first", "median near error / first run's", ".3f"),
        ("worst_vs_first", "worst mesh", ".3f"),
        ("seconds_vs_first", "median time / first run's", ".3f"),
    ]
    markdown = "\n".join(
        [
            "# Optimizer: Adam against SOAP (Adam in the eigenbases of Shampoo's statistics)",
            "",
            f"Machine: {machine}. Command: `{command.strip()}`. Default network, samples and schedule (stretched",
            "to each run's steps), two training cores; errors are mean absolute SDF errors on",
            f"{VALIDATION_POINTS} fresh samples of the training mix (normalized frame). Training seconds include the",
            "per-point table (1-3 s). Ratio < 1: more accurate than the first run.",
            "",
            markdown_table(median_columns, medians),
            "",
            markdown_table(COLUMNS + RATIO_COLUMNS, rows),
        ]
    )
    write_results(
        results_name("optimizer", args.suffix),
        {"machine": machine, "command": command, "medians": medians, "rows": rows},
        markdown,
        folder=RESULTS,
    )


if __name__ == "__main__":
    main()
