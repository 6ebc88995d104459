"""Training distances: the exact backend against pysdf, in time and in error.

For each mesh, the encoder's own training samples (default mix and seed) are
drawn once; both backends of :class:`ksc.encoding.sampling.SignedDistance` then give
their unsigned distance, timed, and pysdf's is compared with the exact one,
per kind of sample (near the surface, a little further, uniform in the box).
Writes ``benchmarks/results/distance.{json,md}``.
Run: ``.venv/bin/python -m research.design.distance [--only bunny.obj ...]`` (about a minute per mesh on 2 cores).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import trimesh

from benchmarks.common import (
    SHARED_MESHES,
    command_line,
    machine_description,
    markdown_table,
    results_name,
    shared_meshes,
    write_results,
)
from ksc.encoding.config import EncodeOptions
from ksc.encoding.pipeline import DOMAIN_BOUND
from ksc.encoding.sampling import SignedDistance, sample_counts, sample_sdf
from ksc.mesh.io import load_mesh
from ksc.mesh.normalize import Transform
from research.design import RESULTS

DEFAULT_MESHES = ("bunny.obj", "dragon.obj", "thingi_76277.obj", "armadillo.obj")
OFF_BY = 1e-3
"""A distance is counted as wrong when it is off by more than this (about half the codec's Chamfer-L1)."""


def measure(path: Path, options: EncodeOptions) -> list[dict]:
    mesh = load_mesh(path)
    unit = trimesh.Trimesh(vertices=Transform.fit(mesh.vertices).to_unit(mesh.vertices), faces=mesh.faces, process=False)
    share = options.sample_uniform_share()
    samples = sample_sdf(unit, SignedDistance(unit), options.samples, DOMAIN_BOUND, np.random.default_rng(options.seed), share)
    distances, seconds = {}, {}
    for backend in ("exact", "pysdf"):
        oracle = SignedDistance(unit, backend)
        start = time.perf_counter()
        distances[backend] = oracle.unsigned(samples.points)
        seconds[backend] = time.perf_counter() - start
    error = np.abs(distances["pysdf"].astype(np.float64) - distances["exact"])
    rows, first = [], 0
    for kind, count, _ in sample_counts(options.samples, share):
        part = error[first : first + count]
        rows.append(
            {
                "mesh": path.name,
                "samples": kind,
                "points": len(part),
                "off_share": float(np.mean(part > OFF_BY)),
                "mean_error": float(part.mean()),
                "p99_error": float(np.percentile(part, 99)),
                "max_error": float(part.max()),
                "exact_s": seconds["exact"],
                "pysdf_s": seconds["pysdf"],
            }
        )
        first += count
    return rows


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("samples", "samples", "s"),
    ("points", "points", "d"),
    ("off_share", f"pysdf off by > {OFF_BY:g}", ".3f"),
    ("mean_error", "mean pysdf error", ".2e"),
    ("p99_error", "99th percentile", ".2e"),
    ("max_error", "largest", ".2e"),
    ("exact_s", "exact s (all samples)", ".1f"),
    ("pysdf_s", "pysdf s (all samples)", ".1f"),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=list(DEFAULT_MESHES), help="Mesh file names to run.")
    parser.add_argument("--meshes", type=Path, default=SHARED_MESHES)
    parser.add_argument("--suffix", default="", help="Results go to distance-SUFFIX.{json,md}.")
    args = parser.parse_args(argv)
    import torch

    options = EncodeOptions()
    rows = []
    for path in [p for p in shared_meshes(args.meshes) if p.name in args.only]:
        for row in measure(path, options):
            rows.append(row)
            print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
    machine = machine_description(torch.device("cpu"))
    command = command_line()
    markdown = "\n".join(
        [
            "# Training distances: exact (libigl AABB tree) against pysdf",
            "",
            f"Machine: {machine}. Command: `{command.strip()}`. The encoder's training samples",
            f"({options.samples} points, seed {options.seed}); times are for the unsigned distance of all of them.",
            "",
            markdown_table(COLUMNS, rows),
        ]
    )
    write_results(
        results_name("distance", args.suffix), {"machine": machine, "command": command, "rows": rows}, markdown, folder=RESULTS
    )


if __name__ == "__main__":
    main()
