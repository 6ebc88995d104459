"""Decode a Draco file and write it as a binary PLY, as a Python user of DracoPy would (benchmarks/decode.py's rival).

Run: ``python -m benchmarks.draco_decode IN.drc OUT.ply``.
"""

import sys

import DracoPy
import numpy as np
import trimesh


def main() -> None:
    source, target = sys.argv[1:3]
    with open(source, "rb") as handle:
        decoded = DracoPy.decode(handle.read())
    mesh = trimesh.Trimesh(np.asarray(decoded.points), np.asarray(decoded.faces).reshape(-1, 3), process=False)
    mesh.export(target, file_type="ply")


if __name__ == "__main__":
    main()
