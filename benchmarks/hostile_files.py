"""Feed the reader many damaged and crafted ``.ksc`` files; count how each class of mutation ends.

For every mutation, ``ksc.decoding.pipeline.verify`` (checksum, header, limits, shapes,
and a run of the network) either accepts the file or raises KscFormatError;
anything else is a bug and is counted as ``crashed``. The slowest case and the
largest Python allocation (tracemalloc) of each class are recorded.
Writes ``benchmarks/results/hostile_files.{json,md}``.
Run: ``.venv/bin/python -m benchmarks.hostile_files [--cases N]``.
"""

from __future__ import annotations

import argparse
import collections
import copy
import time
import tracemalloc

import numpy as np

from benchmarks.common import REPO_ROOT, markdown_table, write_results
from ksc.decoding.pipeline import verify
from ksc.errors import KscFormatError
from ksc.format.container import PREAMBLE, TRAILER, VERSION
from ksc.format.testing import header_paths, pack_raw, reseal, unpack_raw

GOLDEN = REPO_ROOT / "tests" / "golden" / "v{}.{}".format(*VERSION) / "torus.ksc"
ABSURD_VALUES = [None, True, -1, 0, 2**31, 2**63, -(2**63), 1e308, float("nan"), float("inf"), "", "x" * 1000, [], [0] * 9, {}]


def flip_bits(data: bytes, rng: np.random.Generator, first: int = 0, last: int | None = None) -> bytes:
    """``data`` with 1 to 8 random bits flipped in bytes ``[first, last)``."""
    corrupted = bytearray(data)
    last = len(data) if last is None else last
    for position in rng.integers(first * 8, last * 8, size=int(rng.integers(1, 9))):
        corrupted[position // 8] ^= 1 << (position % 8)
    return bytes(corrupted)


def replaced(header: dict, path: tuple, value) -> dict:
    header = copy.deepcopy(header)
    node = header
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return header


def mutation_classes(golden: bytes, cases: int, rng: np.random.Generator) -> dict:
    """Class name -> iterable of mutated files."""
    _, header, tensors = unpack_raw(golden)
    body_end = len(golden) - TRAILER.size
    paths = list(header_paths(header))
    return {
        "truncated at every offset": (golden[:cut] for cut in range(len(golden))),
        "every single bit flipped": (flip_one(golden, position) for position in range(len(golden) * 8)),
        "1-8 random bit flips": (flip_bits(golden, rng) for _ in range(cases)),
        "random bytes": (rng.bytes(int(rng.integers(0, 4096))) for _ in range(cases)),
        "bit flips, checksum recomputed": (
            reseal(flip_bits(golden[:body_end], rng, PREAMBLE.size, body_end)) for _ in range(cases)
        ),
        "header field set to an absurd value": (
            pack_raw(replaced(header, paths[i % len(paths)], ABSURD_VALUES[j]), tensors)
            for i in range(len(paths))
            for j in range(len(ABSURD_VALUES))
        ),
        "absurd header length": (pack_raw(header, tensors, header_size=int(n)) for n in rng.integers(0, 2**32, size=cases)),
        "tensor bytes flipped (valid frame)": (pack_raw(header, flip_bits(tensors, rng), VERSION) for _ in range(cases)),
        "bytes appended after the body": (reseal(golden[:body_end] + rng.bytes(int(rng.integers(1, 64)))) for _ in range(cases)),
        "other format versions": (pack_raw(header, tensors, (major, minor)) for major in range(256) for minor in (0, 9)),
    }


def flip_one(data: bytes, position: int) -> bytes:
    corrupted = bytearray(data)
    corrupted[position // 8] ^= 1 << (position % 8)
    return bytes(corrupted)


def run_class(files) -> dict:
    outcomes = collections.Counter()
    messages = collections.Counter()
    slowest = peak = 0.0
    for data in files:
        tracemalloc.start()
        start = time.perf_counter()
        try:
            verify(data)
            outcomes["accepted"] += 1
        except KscFormatError as error:
            outcomes["rejected"] += 1
            messages[_message_kind(str(error))] += 1
        except Exception as error:  # a bug: recorded, not hidden
            outcomes["crashed"] += 1
            messages[f"CRASH {type(error).__name__}: {error}"] += 1
        slowest = max(slowest, time.perf_counter() - start)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return {
        "cases": sum(outcomes.values()),
        **{key: outcomes.get(key, 0) for key in ("rejected", "accepted", "crashed")},
        "slowest_ms": slowest * 1e3,
        "peak_mib": peak / 2**20,
        "top_messages": dict(messages.most_common(4)),
    }


def _message_kind(message: str) -> str:
    """The message without the values in it, to group similar rejections."""
    return " ".join(word for word in message.split() if not any(ch.isdigit() for ch in word))[:70]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000, help="Cases per random class.")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    golden = GOLDEN.read_bytes()
    rows = []
    for name, files in mutation_classes(golden, args.cases, np.random.default_rng(args.seed)).items():
        row = {"mutation": name, **run_class(files)}
        rows.append(row)
        print(
            f"{name:40s} {row['cases']:7d} cases: {row['rejected']} rejected, {row['accepted']} accepted, "
            f"{row['crashed']} crashed; slowest {row['slowest_ms']:.1f} ms, peak {row['peak_mib']:.1f} MiB",
            flush=True,
        )
    columns = [
        ("mutation", "mutation", "s"),
        ("cases", "cases", "d"),
        ("rejected", "rejected (KscFormatError)", "d"),
        ("accepted", "accepted", "d"),
        ("crashed", "other exception", "d"),
        ("slowest_ms", "slowest ms", ".1f"),
        ("peak_mib", "peak MiB (tracemalloc)", ".2f"),
    ]
    markdown = "\n".join(
        [
            f"# Hostile .ksc files (reader: ksc.decoding.pipeline.verify; "
            f"made from {GOLDEN.relative_to(REPO_ROOT)}, {len(golden)} bytes)",
            "",
            "Made by `python -m benchmarks.hostile_files`. 'accepted' files passed every check: mutations behind a",
            "recomputed checksum can change a value and still be a valid file.",
            "",
            markdown_table(columns, rows),
            "",
            "Most frequent rejection messages per class:",
            "",
            *[f"- {row['mutation']}: " + "; ".join(f"{k} ({v})" for k, v in row["top_messages"].items()) for row in rows],
        ]
    )
    write_results("hostile_files", {"source": str(GOLDEN.relative_to(REPO_ROOT)), "rows": rows}, markdown)
    if any(row["crashed"] for row in rows):
        raise SystemExit("some mutations raised something other than KscFormatError")


if __name__ == "__main__":
    main()
