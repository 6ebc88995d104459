"""Encoding on a machine that is doing something else: alone, beside a busy loop, beside a second encode.

Whole ``ksc encode --threads T`` processes for each T of ``--threads``, with a short training (``--steps``,
``--samples``) of ``--mesh``, wall time around the process:

* alone;
* beside a busy single-threaded process (a numpy loop of 256 x 256 matrix products on one BLAS thread,
  the kind of job the encode-speed issue saw slow encodes 4-6x);
* beside a second, identical encode started two seconds later (both reported).

The files of one T must be identical whatever ran beside them (the table says so). Rounds repeat the whole
set; the summary gives each case's median over rounds against the median alone.
Writes ``benchmarks/results/busy[-SUFFIX].{json,md}``.
Run: ``.venv/bin/python -m research.design.busy`` (about 4 minutes a round on 2 cores).
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

import torch

from benchmarks.common import SHARED_MESHES, command_line, machine_description, markdown_table, results_name, write_results
from research.design import RESULTS

_BUSY_CHILD = """
import numpy as np
a = np.random.default_rng(0).random((256, 256))
while True:
    b = a @ a
"""
"""A single-threaded busy process (BLAS pinned to one thread by its environment)."""
NEIGHBOURS = ("alone", "busy loop", "second encode (the later one)", "second encode (the earlier one)")


def _busy_loop() -> subprocess.Popen:
    one_thread = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", _BUSY_CHILD], env=one_thread)
    time.sleep(1.0)  # let it start spinning
    return process


def _start_encode(mesh: Path, output: Path, steps: int, samples: int, threads: int) -> tuple[subprocess.Popen, float]:
    command = [sys.executable, "-m", "ksc.cli", "encode", "-q", str(mesh), str(output), "--steps", str(steps)]
    command += ["--samples", str(samples), "--threads", str(threads)]
    return subprocess.Popen(command, stderr=subprocess.PIPE, text=True), time.monotonic()


def _finish(started: tuple[subprocess.Popen, float]) -> float:
    process, start = started
    _, err = process.communicate()
    if process.returncode:
        raise SystemExit(f"ksc encode failed: {err.strip()}")
    return time.monotonic() - start


def encode_timings(mesh: Path, steps: int, samples: int, scratch: Path, threads: int) -> list[dict]:
    """Wall seconds of ``ksc encode --threads threads`` with each of :data:`NEIGHBOURS` beside it."""
    encode = functools.partial(_start_encode, mesh, steps=steps, samples=samples, threads=threads)
    seconds = {"alone": _finish(encode(scratch / "a.ksc"))}
    busy = _busy_loop()
    try:
        seconds["busy loop"] = _finish(encode(scratch / "b.ksc"))
    finally:
        busy.kill()
        busy.wait()
    first = encode(scratch / "c.ksc")
    time.sleep(2.0)
    second = encode(scratch / "d.ksc")
    seconds[NEIGHBOURS[3]], seconds[NEIGHBOURS[2]] = _finish(first), _finish(second)
    same = len({(scratch / name).read_bytes() for name in ("a.ksc", "b.ksc", "c.ksc", "d.ksc")}) == 1
    return [
        {"threads": threads, "neighbour": n, "encode_s": seconds[n], "ratio": seconds[n] / seconds["alone"]}
        | {"same_bytes": "yes" if same else "NO"}
        for n in NEIGHBOURS
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", type=Path, default=SHARED_MESHES / "bunny.obj", help="Mesh of the encodes.")
    parser.add_argument("--steps", type=int, default=3000, help="Training steps of every encode.")
    parser.add_argument("--samples", type=int, default=200_000, help="Training points of every encode.")
    parser.add_argument("--rounds", type=int, default=1, help="Rounds of the whole set.")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="Time the encodes with each --threads.")
    parser.add_argument("--suffix", default="", help="Results go to busy-SUFFIX.{json,md}.")
    args = parser.parse_args(argv)
    if not args.mesh.is_file():
        raise SystemExit(f"{args.mesh}: no such mesh (the shared meshes must sit beside the repository, or pass --mesh)")
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            for threads in args.threads:
                for row in encode_timings(args.mesh, args.steps, args.samples, Path(scratch), threads):
                    rows.append({"round": round_index, **row})
                    print(f"round {round_index} --threads {threads} {row['neighbour']}: {row['encode_s']:.1f} s", flush=True)
    summary = []
    for threads in args.threads:
        alone = statistics.median(r["encode_s"] for r in rows if r["threads"] == threads and r["neighbour"] == "alone")
        for neighbour in NEIGHBOURS:
            seconds = statistics.median(r["encode_s"] for r in rows if r["threads"] == threads and r["neighbour"] == neighbour)
            summary.append({"threads": threads, "neighbour": neighbour, "encode_s": seconds, "ratio": seconds / alone})
    machine = machine_description(torch.device("cpu"))
    command = command_line()
    columns = [("threads", "--threads", "d"), ("neighbour", "beside", "s"), ("encode_s", "encode s", ".1f")]
    columns.append(("ratio", "/ alone", ".2f"))
    markdown = "\n".join(
        [
            "# Encoding beside other work",
            "",
            f"Machine: {machine}. Command: `{command}`. Whole `ksc encode --threads T` processes ({args.mesh.name},"
            f" --steps {args.steps} --samples {args.samples}); medians of {args.rounds} round(s).",
            "",
            markdown_table(columns, summary),
            "",
            markdown_table([("round", "round", "d"), *columns, ("same_bytes", "same file", "s")], rows),
        ]
    )
    payload = {"machine": machine, "command": command, "summary": summary, "rows": rows}
    write_results(results_name("busy", args.suffix), payload, markdown, folder=RESULTS)
    print(markdown)


if __name__ == "__main__":
    main()
