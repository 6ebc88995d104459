"""Sheets: surfaces with no inside, encoded as the thin shell around them (format 5.1) and decoded to one side,
against the rival (Draco after the best decimation, full search) at the same bytes.

Meshes: the alligator of ``meshes-wide`` (flat, an outline with a slit for a mouth), four made here (an open
flat square, a wavy square, a bowl, an open tube), and with ``--corpus N``, N meshes of ``../shared/corpus``
with no clear inside (``ksc.encoding.sampling.SignedDistance.encloses_volume`` false), drawn with a fixed seed among the open
ones of 2k-60k faces (measured on, never tuned on). Each is encoded with default settings and decoded by
default. Loops: the input's boundary loops over 2 % of its diagonal that come back (as ``benchmarks.holes``
counts them). Writes ``benchmarks/results/sheets[-SUFFIX].{json,md}``. Run:
``.venv/bin/python -m benchmarks.sheets --corpus 3``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import trimesh

from benchmarks.common import (
    MESH_FOLDERS,
    markdown_table,
    open_corpus_meshes,
    results_name,
    write_table,
)

SIDE = 24
"""Quads per side of the made squares."""


def _grid(height) -> trimesh.Trimesh:
    """A square of :data:`SIDE` x :data:`SIDE` quads over [-1, 1]^2 at z = ``height(x, y)``."""
    axis = np.linspace(-1.0, 1.0, SIDE + 1)
    x, y = np.meshgrid(axis, axis, indexing="ij")
    vertices = np.column_stack([x.ravel(), y.ravel(), height(x, y).ravel()])
    index = np.arange(x.size).reshape(x.shape)
    a, b, c, d = index[:-1, :-1].ravel(), index[1:, :-1].ravel(), index[1:, 1:].ravel(), index[:-1, 1:].ravel()
    return trimesh.Trimesh(vertices, np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])]), process=False)


def made_sheets() -> dict[str, trimesh.Trimesh]:
    sphere = trimesh.creation.icosphere(4)
    cylinder = trimesh.creation.cylinder(0.5, 1.5, sections=64)
    return {
        "open square": _grid(lambda x, y: np.zeros_like(x)),
        "wavy square": _grid(lambda x, y: 0.2 * np.sin(2.0 * x) * np.cos(1.5 * y)),
        "bowl": trimesh.Trimesh(sphere.vertices, sphere.faces[sphere.triangles_center[:, 2] < 0.2]),
        "open tube": trimesh.Trimesh(cylinder.vertices, cylinder.faces[np.abs(cylinder.face_normals[:, 2]) < 0.5]),
    }


def corpus_sheets(count: int, seed: int = 0) -> list[Path]:
    from ksc.encoding.sampling import SignedDistance
    from ksc.mesh.normalize import Transform

    def is_sheet(mesh) -> bool:
        unit = trimesh.Trimesh(Transform.fit(mesh.vertices).to_unit(mesh.vertices), mesh.faces, process=False)
        return not SignedDistance(unit).encloses_volume()

    return open_corpus_meshes(count, is_sheet, seed)


def measure(name: str, source: trimesh.Trimesh) -> dict:
    from benchmarks.holes import loops_back
    from benchmarks.rival import CachedRival
    from ksc import decode
    from ksc.encoding.config import preset_options
    from ksc.encoding.pipeline import encode
    from ksc.format import read_container
    from ksc.mesh.metrics import compare_meshes
    from ksc.mesh.normalize import Transform

    started = time.monotonic()
    data = encode(source, preset_options("default")).data
    seconds = time.monotonic() - started
    container = read_container(data)
    decoded = decode(data)
    error = compare_meshes(source, decoded)
    cell = 2 * container.meta["bound"] / 191 * Transform.fit(source.vertices).scale
    back, total = loops_back(source, decoded, cell)
    row = {"mesh": name, "sheet": "sheet" in container.meta, "bytes": len(data), "encode_s": seconds}
    row.update({"back": back, "loops": total})
    row.update({f"ksc_{key}": value for key, value in error.to_dict().items()})
    rival = CachedRival(Path(name.replace(" ", "_")), source).best(len(data))
    if rival is not None:
        row.update({f"draco_{key}": rival[key] for key in ("chamfer_l1", "p99", "hausdorff", "normal_error", "bytes")})
        row["chamfer_ratio"] = row["ksc_chamfer_l1"] / max(rival["chamfer_l1"], 1e-12)
    return row


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("bytes", "bytes", ",d"),
    ("ksc_chamfer_l1", "Chamfer-L1", ".2e"),
    ("draco_chamfer_l1", "Draco Chamfer-L1", ".2e"),
    ("chamfer_ratio", "x Draco", ",.1f"),
    ("ksc_p99", "p99", ".4f"),
    ("draco_p99", "Draco p99", ".4f"),
    ("ksc_hausdorff", "Hausdorff", ".4f"),
    ("draco_hausdorff", "Draco Hausdorff", ".4f"),
    ("ksc_normal_error", "normal error (deg)", ".2f"),
    ("draco_normal_error", "Draco normal error", ".2f"),
    ("back", "loops back", "d"),
    ("loops", "of loops", "d"),
    ("encode_s", "encode s", ".0f"),
]

TITLE = "Sheets (format 5.1) against Draco at the same bytes"
NOTE = (
    "Distances in the input's normalized frame (ksc.mesh.metrics); the rival is benchmarks.rival's full search"
    " at the ksc file's bytes."
)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=int, default=0, help="Also this many corpus meshes with no clear inside (seeded draw).")
    parser.add_argument("--suffix", default="")
    args = parser.parse_args(argv)

    from ksc.mesh.io import load_mesh

    meshes = [(path.name, path) for folder in MESH_FOLDERS for path in [folder / "alligator.obj"] if path.is_file()]
    meshes += list(made_sheets().items())
    meshes += [(path.name, path) for path in (corpus_sheets(args.corpus) if args.corpus else [])]
    rows = []
    for name, mesh in meshes:
        row = measure(name, load_mesh(mesh) if isinstance(mesh, Path) else mesh)
        rows.append(row)
        print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
    write_table(results_name("sheets", args.suffix), TITLE, NOTE, COLUMNS, rows)


if __name__ == "__main__":
    main()
