"""Lone ``ksc encode`` runs with libgomp's own spin-wait and with ksc's (``ksc/threads.py``), interleaved.

* ``libgomp's choice``: torch is imported before the command runs, so libgomp
  starts without ``GOMP_SPINCOUNT`` (what ksc did until this benchmark's commit);
* ``ksc``: the command as shipped, which sets ``GOMP_SPINCOUNT`` first.

Each encode runs alone, with torch's default threads (one per core), and its
wall time is measured around the process. A second table times the training
steps alone (``ksc.train.fit`` on random points, in a child process per setting,
``--step-rounds`` interleaved rounds): the part of an encode the setting acts
on, and a less noisy measure than whole encodes on a shared machine. The two
files of a mesh must be identical (the setting changes when threads sleep, not
the arithmetic); the table says so per pair. Rounds alternate the order of the two settings so the
shared machine's drift hits both alike.
Writes ``benchmarks/results/openmp-spin.{json,md}``.
Run: ``.venv/bin/python benchmarks/openmp_spin.py`` (two meshes, two rounds: about 15 minutes).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from common import SHARED_MESHES, command_line, machine_description, markdown_table, results_name, write_results  # noqa: E402

from ksc.threads import SPIN_COUNT, WAIT_SETTINGS  # noqa: E402

SETTINGS = {
    "libgomp's choice": ["-c", "import runpy, sys, torch; sys.argv[0] = 'ksc'; runpy.run_module('ksc.cli', run_name='__main__')"],
    "ksc": ["-m", "ksc.cli"],
}
"""How each setting starts the command (both end in ``ksc encode IN OUT``)."""

_STEPS_CHILD = """
import sys, time, torch
from ksc.config import ModelConfig, TrainConfig
from ksc.model import KeySphereNet
from ksc.sampling import SdfSamples
from ksc.train import fit
generator = torch.Generator().manual_seed(0)
points = torch.rand(1_000_000, 3, generator=generator) * 2 - 1
samples = SdfSamples(points.numpy(), (0.5 - points.norm(dim=1)).numpy())
model = KeySphereNet(ModelConfig(), torch.rand(ModelConfig().spheres, 4, generator=generator) * 0.5)
steps = int(sys.argv[1])
start = time.perf_counter()
fit(model, samples, TrainConfig(steps=steps), generator, torch.device("cpu"))
print((time.perf_counter() - start) / steps * 1e3)
"""
"""Milliseconds per training step of the default network, timed in a fresh process."""


def _without_wait_settings() -> dict:
    """This process's environment without the OpenMP wait settings (this script's own included)."""
    return {k: v for k, v in os.environ.items() if k not in WAIT_SETTINGS}


def _child_env(setting: str) -> dict:
    """The environment of a step timing: ksc's spin count for ``ksc``, libgomp's own choice otherwise."""
    env = _without_wait_settings()
    return {**env, "GOMP_SPINCOUNT": SPIN_COUNT} if setting == "ksc" else env


def _order(round_index: int) -> list[str]:
    """The settings in the order round ``round_index`` runs them: alternating, so drift hits both alike."""
    return list(SETTINGS) if round_index % 2 == 0 else list(SETTINGS)[::-1]


def _step_ms(setting: str, steps: int) -> float:
    done = subprocess.run(
        [sys.executable, "-c", _STEPS_CHILD, str(steps)], env=_child_env(setting), capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"step timing ({setting}) failed: {done.stderr.strip()}")
    return float(done.stdout)


def _encode(setting: str, mesh: Path, output: Path) -> float:
    env = _without_wait_settings()  # the CLI sets its own
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, *SETTINGS[setting], "encode", "--quiet", str(mesh), str(output)], env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise SystemExit(f"{setting} failed on {mesh.name}: {done.stderr.strip()}")
    return time.monotonic() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", nargs="+", default=["bunny.obj", "thingi_90889.obj"], help="Names in ../shared/meshes.")
    parser.add_argument("--rounds", type=int, default=2, help="Encodes per mesh and setting.")
    parser.add_argument("--step-rounds", type=int, default=5, help="Interleaved step timings per setting.")
    parser.add_argument("--steps", type=int, default=1000, help="Training steps per timing.")
    parser.add_argument("--suffix", default="", help="Results go to openmp-spin-SUFFIX.{json,md}.")
    args = parser.parse_args(argv)
    paths = [SHARED_MESHES / name for name in args.meshes]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise SystemExit(f"meshes not found: {', '.join(missing)}")

    step_rows = []
    for round_index in range(args.step_rounds):
        for setting in _order(round_index):
            step_rows.append({"round": round_index, "setting": setting, "ms_per_step": _step_ms(setting, args.steps)})
            print(f"steps round {round_index} {setting}: {step_rows[-1]['ms_per_step']:.2f} ms", flush=True)
    step_summary = [
        {"setting": s, "median_ms": statistics.median(r["ms_per_step"] for r in step_rows if r["setting"] == s)} for s in SETTINGS
    ]

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            order = _order(round_index)
            for path in paths:
                files = {}
                for setting in order:
                    files[setting] = Path(scratch) / f"{setting[:3]}-{path.stem}.ksc"
                    seconds = _encode(setting, path, files[setting])
                    rows.append({"mesh": path.name, "round": round_index, "setting": setting, "encode_s": seconds})
                    print(f"{path.name} round {round_index} {setting}: {seconds:.1f} s", flush=True)
                same = len({f.read_bytes() for f in files.values()}) == 1
                for row in rows[-len(order) :]:
                    row["same_bytes"] = "yes" if same else "NO"

    summary = []
    for path in paths:
        times = {s: [r["encode_s"] for r in rows if r["mesh"] == path.name and r["setting"] == s] for s in SETTINGS}
        base, tuned = (statistics.median(times[s]) for s in SETTINGS)
        summary.append({"mesh": path.name, "base_s": base, "ksc_s": tuned, "ratio": tuned / base})
    machine = machine_description(torch.device("cpu"))
    command = command_line()
    columns = [("mesh", "mesh", "s"), ("base_s", "libgomp's choice: median s", ".1f"), ("ksc_s", "ksc: median s", ".1f")]
    columns.append(("ratio", "ksc / libgomp's choice", ".2f"))
    markdown = "\n".join(
        [
            "# Encode time with libgomp's spin-wait and with ksc's",
            "",
            f"Machine: {machine}, one process at a time. Command: `{command}`.",
            "",
            f"Training steps of the default network (batch 2048), {args.steps} per timing,"
            f" {args.step_rounds} interleaved rounds:",
            "",
            markdown_table([("setting", "setting", "s"), ("median_ms", "median ms per step", ".2f")], step_summary),
            "",
            "Whole encodes (`ksc encode`, one at a time):",
            "",
            markdown_table(columns, summary),
            "",
            markdown_table(
                [("mesh", "mesh", "s"), ("round", "round", "d"), ("setting", "setting", "s"), ("encode_s", "encode s", ".1f")]
                + [("same_bytes", "same file as the other setting", "s")],
                rows,
            ),
        ]
    )
    payload = {
        "machine": machine,
        "command": command,
        "steps": step_rows,
        "step_summary": step_summary,
        "rows": rows,
        "summary": summary,
    }
    write_results(results_name("openmp-spin", args.suffix), payload, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
