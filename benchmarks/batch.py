"""``ksc batch`` throughput: the shared meshes through several Dask setups, a rerun, a projection for Thingi10K.

Every setup encodes the 15 meshes of ../shared/meshes with the same short training (``--steps``,
``--samples``) into a fresh folder: the default LocalCluster (``ksc batch``'s own sizing), an external
scheduler with 2 workers started as separate processes (as ``dask scheduler`` / ``dask worker`` on other
machines would be), 2 workers x 1 thread, and 1 worker whose tasks train on 2 cores (``--threads 2``).
This machine's speed drifts by more than the setups differ, so the setups run in ``--rounds`` interleaved
rounds (the order reversed every other round) and each is judged by its median throughput over the
rounds; ``--warm-up`` untimed runs of the default setup go first (a session's first run was ~10 % slower:
cold caches). Per run: wall time, meshes per hour, and where the task slots' time went besides the tasks: the
start (run start to each slot's first task), the scheduling gaps between a slot's tasks (the scheduler's
cost per task) and the idle tail (a slot's last task to the end). Then a rerun of a finished default
folder (every file skipped).
Writes ``benchmarks/results/batch.{json,md}``. Run: ``.venv/bin/python -m benchmarks.batch``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from benchmarks.common import SHARED_MESHES, command_line, machine_description, markdown_table, write_results
from ksc.encoding.config import EncodeOptions, TrainConfig
from ksc.tools.batch import EncodeJob, run_batch

THINGI10K = 10_000


def external_cluster(folder: Path, workers: int):
    """Start ``dask scheduler`` and ``workers`` one-thread ``dask worker`` processes; (address, processes, seconds)."""
    start = time.monotonic()
    address_file = folder / "scheduler.json"
    python = sys.executable
    scheduler = [python, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(address_file), "--port", "0"]
    processes = [subprocess.Popen([*scheduler, "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    while not (address_file.exists() and address_file.stat().st_size):
        time.sleep(0.1)
    address = json.loads(address_file.read_text())["address"]
    for _ in range(workers):
        command = [python, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard"]
        processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    from dask.distributed import Client

    with Client(address) as client:
        client.wait_for_workers(workers)
    return address, processes, time.monotonic() - start


def slot_times(report) -> dict:
    """Seconds of the run's task slots spent starting, between tasks and idle at the end (from the tasks' times)."""
    end = report.began + report.seconds
    start = gaps = tail = 0.0
    for worker in {task["worker"] for task in report.tasks}:
        runs = sorted((t["started"], t["finished"]) for t in report.tasks if t["worker"] == worker)
        start += runs[0][0] - report.began
        gaps += sum(later[0] - earlier[1] for earlier, later in zip(runs, runs[1:], strict=False))
        tail += end - runs[-1][1]
    return {"start_s": start, "gap_s": gaps, "tail_s": tail}


def measure(name: str, source: Path, out: Path, job: EncodeJob, slots: int, **where) -> dict:
    report = run_batch(source, out, job, **where)
    task_seconds = sum(row["seconds"] or 0.0 for row in report.rows if row["status"] == "ok")
    tasks = len(report.rows)
    times = slot_times(report) if report.tasks else {}
    row = {
        "setup": name,
        "slots": slots,
        "meshes": tasks,
        "ok": report.count("ok"),
        "skipped": report.count("skipped"),
        "failed": report.count("failed"),
        "wall_s": report.seconds,
        "meshes_per_hour": 3600.0 * tasks / report.seconds,
        "task_s_median": statistics.median(row["seconds"] for row in report.rows if row["seconds"]) if tasks else None,
        "overhead_per_task_s": (report.seconds * slots - task_seconds) / tasks if report.count("ok") else None,
        "start_s": times.get("start_s"),
        "tail_s": times.get("tail_s"),
        "gap_per_task_s": times["gap_s"] / tasks if times else None,
    }
    print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
    return row


COLUMNS = [
    ("setup", "setup", "s"),
    ("slots", "task slots", "d"),
    ("meshes", "meshes", "d"),
    ("ok", "encoded", "d"),
    ("skipped", "skipped", "d"),
    ("failed", "failed", "d"),
    ("wall_s", "wall s", ".1f"),
    ("meshes_per_hour", "meshes / hour", ".0f"),
    ("task_s_median", "median task s", ".1f"),
    ("overhead_per_task_s", "slot time not in tasks / task s", ".2f"),
    ("start_s", "of it: start s", ".1f"),
    ("gap_per_task_s", "gaps between tasks / task s", ".3f"),
    ("tail_s", "idle tail s", ".1f"),
]


SETUPS = (
    "default LocalCluster",
    "external scheduler + 2 workers",
    "LocalCluster, 2 workers x 1 thread",
    "LocalCluster, 1 worker x 2 threads",
)


def run_setup(name: str, source: Path, out: Path, job: EncodeJob, cores: int) -> dict:
    """One run of the setup ``name`` (one of :data:`SETUPS`) into the fresh folder ``out``."""
    if name == SETUPS[0]:
        return measure(name, source, out, job, cores)
    if name == SETUPS[2]:
        return measure(name, source, out, job, 2, workers=2)
    if name == SETUPS[3]:
        return measure(name, source, out, replace(job, threads=2), 1, workers=1)
    out.mkdir(parents=True)
    address, processes, started = external_cluster(out, 2)
    try:
        row = measure(name, source, out / "files", job, 2, scheduler=address)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=60)
    return {**row, "cluster_start_s": started}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="Training steps of every encode (short on purpose).")
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="Interleaved runs of every setup (order reversed each round).")
    parser.add_argument("--meshes", type=Path, default=SHARED_MESHES)
    parser.add_argument(
        "--warm-up", type=int, default=1, help="Untimed runs of the default setup first (the first run pays for cold caches)."
    )
    args = parser.parse_args(argv)
    if not args.meshes.is_dir():
        raise SystemExit(f"benchmark data folder {args.meshes} is absent: it must sit beside the repository")
    cores = len(os.sched_getaffinity(0))
    job = EncodeJob(options=EncodeOptions(train=TrainConfig(steps=args.steps), samples=args.samples, qat_steps=args.steps // 10))
    rows = []
    with tempfile.TemporaryDirectory(prefix="ksc-batch-") as scratch:
        scratch = Path(scratch)
        for warm_up in range(args.warm_up):
            run_setup(SETUPS[0], args.meshes, scratch / f"warm-up-{warm_up}", job, cores)
        for round_ in range(args.rounds):
            for name in SETUPS if round_ % 2 == 0 else reversed(SETUPS):
                row = run_setup(name, args.meshes, scratch / f"{SETUPS.index(name)}-{round_}", job, cores)
                rows.append({**row, "round": round_ + 1})
        first_default = scratch / "0-0"
        rerun = {**measure("rerun of a finished default folder", args.meshes, first_default, job, cores), "round": None}
    summary = []
    for name in SETUPS:
        runs = [row for row in rows if row["setup"] == name]
        summary.append(
            {
                "setup": name,
                "runs": len(runs),
                "meshes_per_hour": statistics.median(row["meshes_per_hour"] for row in runs),
                "lowest": min(row["meshes_per_hour"] for row in runs),
                "highest": max(row["meshes_per_hour"] for row in runs),
                "overhead_per_task_s": _median(row["overhead_per_task_s"] for row in runs),
                "gap_per_task_s": _median(row["gap_per_task_s"] for row in runs),
            }
        )
    default, best = summary[0], max(summary, key=lambda r: r["meshes_per_hour"])
    default_runs = [row for row in rows if row["setup"] == SETUPS[0]]
    per_mesh_core_s = statistics.median(row["wall_s"] for row in default_runs) * cores / default_runs[0]["meshes"]
    projection = [{"machines": n, "days": THINGI10K * per_mesh_core_s / (cores * n) / 86400.0} for n in (1, 10, 100, 1000)]
    verdict = {
        "default_vs_best": default["meshes_per_hour"] / best["meshes_per_hour"],
        "best_setup": best["setup"],
        "rerun_share": rerun["wall_s"] / default_runs[0]["wall_s"],
        "per_mesh_core_s": per_mesh_core_s,
    }
    import torch

    machine = machine_description(torch.device("cpu"))
    starts = [row["cluster_start_s"] for row in rows if "cluster_start_s" in row]
    markdown = "\n".join(
        [
            "# `ksc batch`: throughput of Dask setups on this machine",
            "",
            f"Machine: {machine}, {cores} cores. Command: `{command_line().strip()}`. Every run encodes the",
            f"{default_runs[0]['meshes']} meshes of `{args.meshes.name}` with {args.steps} training steps and",
            f"{args.samples} samples (a short training, the same for all; a default encode trains {TrainConfig.steps} steps)",
            "into a fresh folder.",
            f"The setups ran in {args.rounds} interleaved rounds (the order reversed every other round), after"
            f" {args.warm_up} untimed run(s) of the default setup; each is judged by",
            f"its median over the rounds. On {cores} cores the default LocalCluster is {cores} workers x 1 thread.",
            "",
            "## Setups (median over the rounds)",
            "",
            markdown_table(SUMMARY_COLUMNS, summary),
            "",
            f"Default LocalCluster: {verdict['default_vs_best']:.3f}x the median throughput of the best setup",
            f"({best['setup']}); a rerun of a finished folder took {100 * verdict['rerun_share']:.1f} % of its first run's time.",
            "",
            "## Every run, in the order run",
            "",
            "Slot time not in tasks: wall time x task slots minus the tasks' own seconds, per task; of it the slots'",
            "start (cluster, worker processes, imports), the gaps between a slot's tasks (the scheduler's cost per",
            "task) and the idle tail (a slot waiting for another's last task). The external",
            f"scheduler's start (not in its wall time): {', '.join(f'{s:.1f}' for s in starts)} s.",
            "",
            markdown_table([("round", "round", "d"), *COLUMNS], [*rows, rerun]),
            "",
            f"## Thingi10K ({THINGI10K} meshes) at this training, from the measured {per_mesh_core_s:.0f} core-seconds per mesh",
            "",
            markdown_table([("machines", f"machines of {cores} cores", "d"), ("days", "days", ".2f")], projection),
            "",
            f"A default encode trains {TrainConfig.steps} steps instead of these; its time per mesh is in `encode-versions.md`.",
        ]
    )
    payload = {"machine": machine, "command": command_line(), "rows": rows, "rerun": rerun, "summary": summary}
    write_results("batch", {**payload, "projection": projection, **verdict}, markdown)
    print(markdown)


def _median(values):
    """The median of the values that are not None (a run whose every file failed has no overheads); None if none."""
    known = [value for value in values if value is not None]
    return statistics.median(known) if known else None


SUMMARY_COLUMNS = [
    ("setup", "setup", "s"),
    ("runs", "runs", "d"),
    ("meshes_per_hour", "meshes / hour (median)", ".0f"),
    ("lowest", "lowest", ".0f"),
    ("highest", "highest", ".0f"),
    ("overhead_per_task_s", "slot time not in tasks / task s", ".2f"),
    ("gap_per_task_s", "gaps between tasks / task s", ".3f"),
]


if __name__ == "__main__":
    main()
