"""Training on a machine that is doing something else: alone, beside a busy loop, beside a second training.

For each OpenMP wait setting, ``--steps`` training steps of the default network (batch 2048, torch's
default threads, one per core) are timed in a fresh process (``openmp_spin._STEPS_CHILD``):

* alone;
* beside a busy single-threaded process (a numpy loop of 256 x 256 matrix products on one BLAS thread,
  the kind of job the encode-speed issue saw slow encodes 4-6x);
* beside a second, identical timing (two encodes side by side; the first one's time is reported).

Settings: ``ksc`` (the CLI's on an idle machine, ``ksc/threads.py``: ``GOMP_SPINCOUNT=300000``), shorter
spins (``GOMP_SPINCOUNT`` 100000, 30000, 1000), ``passive`` (``OMP_WAIT_POLICY=PASSIVE``: idle workers sleep
at once); these change when threads sleep, not the arithmetic. ``one thread`` (``OMP_NUM_THREADS=1``) is the
reference of a training that leaves the other core alone (its files differ: the bytes depend on the thread
count). Rounds alternate the order of the settings so the
machine's drift hits them alike.

A second table times whole ``ksc encode --threads T`` processes for each T of ``--encode-threads`` (the
CLI picks the wait itself, ``ksc/threads.py``) with a short training (``--encode-steps``,
``--encode-samples``) of ``--mesh``: alone, beside the busy loop, and beside a second such encode started
two seconds earlier (both reported).
Writes ``benchmarks/results/busy[-SUFFIX].{json,md}``.
Run: ``.venv/bin/python benchmarks/busy.py`` (about 25 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import functools
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
from openmp_spin import _STEPS_CHILD, _without_wait_settings  # noqa: E402

SETTINGS = {
    "ksc": {"GOMP_SPINCOUNT": "300000"},
    "spin 100000": {"GOMP_SPINCOUNT": "100000"},
    "spin 30000": {"GOMP_SPINCOUNT": "30000"},
    "short spin": {"GOMP_SPINCOUNT": "1000"},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "one thread": {"OMP_NUM_THREADS": "1"},
}
"""The OpenMP wait environment of each setting's child processes."""
NEIGHBOURS = ("alone", "busy loop", "second training")
_BUSY_CHILD = """
import numpy as np
a = np.random.default_rng(0).random((256, 256))
while True:
    b = a @ a
"""
"""A single-threaded busy process (BLAS pinned to one thread by its environment)."""


def _env(setting: str) -> dict:
    return {**_without_wait_settings(), **SETTINGS[setting]}


def _start_steps(setting: str, steps: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", _STEPS_CHILD, str(steps)],
        env=_env(setting),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _ms_per_step(process: subprocess.Popen) -> float:
    out, err = process.communicate()
    if process.returncode:
        raise SystemExit(f"step timing failed: {err.strip()}")
    return float(out)


def _busy_loop() -> subprocess.Popen:
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", _BUSY_CHILD], env=one_thread)
    time.sleep(1.0)  # let it start spinning
    return process


def timing(setting: str, neighbour: str, steps: int) -> float:
    """Milliseconds per training step of one timing of ``setting`` with ``neighbour`` running beside it."""
    other = None
    if neighbour == "busy loop":
        other = _busy_loop()
    elif neighbour == "second training":
        other = _start_steps(setting, steps)
    try:
        return _ms_per_step(_start_steps(setting, steps))
    finally:
        if other is not None:
            other.kill()
            other.wait()


def _start_encode(mesh: Path, output: Path, steps: int, samples: int, threads: int) -> tuple[subprocess.Popen, float]:
    env = _without_wait_settings()  # the CLI chooses
    command = [sys.executable, "-m", "ksc.cli", "encode", "-q", str(mesh), str(output), "--steps", str(steps)]
    command += ["--samples", str(samples), "--threads", str(threads)]
    return subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True), time.monotonic()


def _finish(started: tuple[subprocess.Popen, float]) -> float:
    process, start = started
    _, err = process.communicate()
    if process.returncode:
        raise SystemExit(f"ksc encode failed: {err.strip()}")
    return time.monotonic() - start


def encode_timings(mesh: Path, steps: int, samples: int, scratch: Path, threads: int) -> list[dict]:
    """Wall seconds of ``ksc encode --threads threads``: alone, beside the busy loop, beside a second encode."""
    encode = functools.partial(_start_encode, mesh, steps=steps, samples=samples, threads=threads)
    rows = [{"neighbour": "alone", "encode_s": _finish(encode(scratch / "a.ksc"))}]
    busy = _busy_loop()
    try:
        rows.append({"neighbour": "busy loop", "encode_s": _finish(encode(scratch / "b.ksc"))})
    finally:
        busy.kill()
        busy.wait()
    first = encode(scratch / "c.ksc")
    time.sleep(2.0)
    second = encode(scratch / "d.ksc")
    first_s, second_s = _finish(first), _finish(second)
    rows.append({"neighbour": "second encode (the later one)", "encode_s": second_s})
    rows.append({"neighbour": "second encode (the earlier one)", "encode_s": first_s})
    same = len({(scratch / name).read_bytes() for name in ("a.ksc", "b.ksc", "c.ksc", "d.ksc")}) == 1
    for row in rows:
        row["threads"] = threads
        row["ratio"] = row["encode_s"] / rows[0]["encode_s"]
        row["same_bytes"] = "yes" if same else "NO"
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1000, help="Training steps per timing.")
    parser.add_argument("--rounds", type=int, default=2, help="Timings per setting and neighbour (0: none).")
    parser.add_argument("--settings", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--mesh", type=Path, default=SHARED_MESHES / "bunny.obj", help="Mesh of the whole encodes.")
    parser.add_argument("--encode-steps", type=int, default=3000)
    parser.add_argument("--encode-samples", type=int, default=200_000)
    parser.add_argument("--encode-rounds", type=int, default=1, help="Rounds of whole encodes (0: none).")
    parser.add_argument(
        "--encode-threads",
        type=int,
        nargs="*",
        default=[1, 2],
        help="Time the whole encodes with each of these --threads.",
    )
    parser.add_argument("--suffix", default="", help="Results go to busy-SUFFIX.{json,md}.")
    args = parser.parse_args(argv)
    if args.encode_rounds and not args.mesh.is_file():
        raise SystemExit(f"{args.mesh}: no such mesh (the shared meshes must sit beside the repository, or pass --mesh)")
    rows = []
    for round_index in range(args.rounds):
        order = args.settings if round_index % 2 == 0 else args.settings[::-1]
        for neighbour in NEIGHBOURS:
            for setting in order:
                ms = timing(setting, neighbour, args.steps)
                rows.append({"round": round_index, "setting": setting, "neighbour": neighbour, "ms_per_step": ms})
                print(f"round {round_index} {setting} {neighbour}: {ms:.2f} ms per step", flush=True)
    summary = []
    for setting in args.settings if rows else []:
        medians = {
            n: statistics.median(r["ms_per_step"] for r in rows if r["setting"] == setting and r["neighbour"] == n)
            for n in NEIGHBOURS
        }
        entry = {"setting": setting, **{f"{n}_ms": medians[n] for n in NEIGHBOURS}}
        entry.update({f"{n}_ratio": medians[n] / medians["alone"] for n in NEIGHBOURS[1:]})
        summary.append(entry)
    encodes = []
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.encode_rounds):
            for threads in args.encode_threads:
                for row in encode_timings(args.mesh, args.encode_steps, args.encode_samples, Path(scratch), threads):
                    encodes.append({"round": round_index, **row})
                    print(
                        f"encode round {round_index} threads {row['threads']} {row['neighbour']}: {row['encode_s']:.1f} s",
                        flush=True,
                    )
    machine = machine_description(torch.device("cpu"))
    command = command_line()
    columns = [("setting", "setting", "s"), ("alone_ms", "alone ms/step", ".2f")]
    for n in NEIGHBOURS[1:]:
        columns += [(f"{n}_ms", f"{n} ms/step", ".2f"), (f"{n}_ratio", f"{n} / alone", ".2f")]
    markdown = "\n".join(
        [
            "# Training beside other work: OpenMP wait settings",
            "",
            f"Machine: {machine} ({os.cpu_count()} cores). Command: `{command}`. Medians of {args.rounds} timings"
            f" of {args.steps} training steps of the default network, each in a fresh process.",
            "",
            markdown_table(columns, summary),
            "",
            markdown_table(
                [
                    ("round", "round", "d"),
                    ("setting", "setting", "s"),
                    ("neighbour", "beside", "s"),
                    ("ms_per_step", "ms/step", ".2f"),
                ],
                rows,
            ),
            "",
            f"Whole `ksc encode --threads T` processes ({args.mesh.name}, --steps {args.encode_steps} --samples"
            f" {args.encode_samples}; the CLI measures the load and picks the wait):",
            "",
            markdown_table(
                [
                    ("round", "round", "d"),
                    ("threads", "--threads", "d"),
                    ("neighbour", "beside", "s"),
                    ("encode_s", "encode s", ".1f"),
                ]
                + [("ratio", "/ alone", ".2f"), ("same_bytes", "same file", "s")],
                encodes,
            ),
        ]
    )
    payload = {"machine": machine, "command": command, "rows": rows, "summary": summary, "encodes": encodes}
    write_results(results_name("busy", args.suffix), payload, markdown)
    print(markdown)


if __name__ == "__main__":
    main()
