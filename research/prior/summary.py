"""One table over the experiment's result files: per variant, how the six meshes fare near 5, 7 and 10 KB.

Run ``python -m research.prior.summary research/prior/results/*.json > research/prior/results/summary.md``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

TARGETS = (5000, 7000, 10000)
WIN = 0.85
"""The issue's bar: Chamfer-L1 at most 0.85x Draco's at ~7 KB on most of the six."""


def nearest(rows: list[dict], target: int) -> dict:
    return min(rows, key=lambda r: abs(np.log(r["bytes"] / target)))


def summarize(paths: list[Path]) -> str:
    lines = [
        "# Learned prior: every variant near 5, 7 and 10 KB",
        "",
        "Per variant and target size, each mesh's point nearest that size (its own bytes; Draco interpolated at",
        "them): the median bytes, the median and range of the Chamfer-L1, p99 and normal-error ratios to Draco,",
        f"and on how many meshes the Chamfer-L1 is at most {WIN}x Draco's. `python -m research.prior.summary "
        + " ".join(str(p) for p in paths)
        + "`.",
        "",
        "| variant | nearest to | meshes | median bytes | Chamfer-L1 x Draco (median, range) | p99 x Draco | normal x Draco "
        f"| Chamfer <= {WIN}x |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for path in paths:
        result = json.loads(path.read_text())
        rows = result["rows"]
        meshes = list(dict.fromkeys(r["mesh"] for r in rows))
        groups: dict[tuple, list[int]] = {}
        for target in TARGETS:
            points = tuple(rows.index(nearest([r for r in rows if r["mesh"] == m], target)) for m in meshes)
            groups.setdefault(points, []).append(target)
        for chosen, targets in groups.items():
            points = [rows[i] for i in chosen]
            cd = np.array([p["chamfer_ratio"] for p in points])
            label = " / ".join(f"{t // 1000}" for t in targets)
            lines.append(
                f"| `{path.stem}` | ~{label} KB | {len(points)} | {int(np.median([p['bytes'] for p in points]))} "
                f"| {np.median(cd):.2f} ({cd.min():.2f}-{cd.max():.2f}) | {np.median([p['p99_ratio'] for p in points]):.2f} "
                f"| {np.median([p['normal_ratio'] for p in points]):.2f} | {int((cd <= WIN).sum())} of {len(points)} |"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    sys.stdout.write(summarize([Path(p) for p in sys.argv[1:]]))


if __name__ == "__main__":
    main()
