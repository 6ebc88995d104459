"""Holes kept open: the same file decoded with its holes (format 5.1) and capped (its holes taken out of the
header: the same network), each against its input; and how many of the input's boundary loops come back.

Meshes: the open meshes of both folders (``bunny_scan_open``, ``thingi_96481``), and with ``--corpus N``, N
open meshes of ``../shared/corpus/meshes`` drawn with a fixed seed among those of 2k-60k faces with 1-12 loops
over 2 % of the diagonal (measured on, never tuned on). Each is encoded with default settings. A loop comes
back when 90 % of its vertices lie within 3 grid cells (192^3) of the output's boundary. The rival's
figures are those of ``rd.json`` (Draco at the default file's bytes). Writes
``benchmarks/results/holes[-SUFFIX].{json,md}``. Run: ``.venv/bin/python -m benchmarks.holes --corpus 5``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import trimesh

from benchmarks.common import (
    MESH_FOLDERS,
    RESULTS,
    markdown_table,
    open_corpus_meshes,
    results_name,
    write_table,
)

OPEN_MESHES = ("bunny_scan_open.obj", "thingi_96481.obj")
LOOP_SHARE, BACK_SHARE, BACK_CELLS = 0.02, 0.9, 3.0


def corpus_picks(count: int, seed: int = 0) -> list:
    """``count`` open corpus meshes (2k-60k faces) with 1-12 candidate loops, in a seeded order."""
    from ksc.mesh.holes import boundary_loops

    def has_loops(mesh) -> bool:
        mesh = trimesh.Trimesh(*_welded(mesh), process=False)
        diagonal = float(np.linalg.norm(mesh.bounds[1] - mesh.bounds[0]))
        loops = [loop for loop in boundary_loops(np.asarray(mesh.faces)) if _length(mesh.vertices[loop]) > LOOP_SHARE * diagonal]
        return 1 <= len(loops) <= 12

    return open_corpus_meshes(count, has_loops, seed)


def _welded(mesh) -> tuple[np.ndarray, np.ndarray]:
    from ksc.mesh.topology import weld_by_position

    return weld_by_position(mesh.vertices, mesh.faces)


def _length(points: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(np.vstack([points, points[:1]]), axis=0), axis=1).sum())


def _along(points: np.ndarray, spacing: float) -> np.ndarray:
    """Points every ``spacing`` or closer along the closed polyline ``points`` (K, 3): a decimated boundary's
    vertices can lie far apart on a straight stretch."""
    ends = np.roll(points, -1, axis=0)
    steps = np.maximum(1, np.ceil(np.linalg.norm(ends - points, axis=1) / spacing)).astype(int)
    share = np.concatenate([np.arange(n) / n for n in steps])
    start = np.repeat(np.arange(len(points)), steps)
    return points[start] + share[:, None] * (ends[start] - points[start])


def loops_back(source, decoded, cell: float) -> tuple[int, int]:
    """(loops back, loops) of the input's boundary loops over :data:`LOOP_SHARE` of its diagonal."""
    from scipy.spatial import cKDTree

    from ksc.mesh.holes import boundary_loops

    vertices, faces = _welded(source)
    output_vertices, output_faces = _welded(decoded)
    rims = boundary_loops(output_faces)
    tree = cKDTree(np.concatenate([_along(output_vertices[loop], cell) for loop in rims])) if rims else None
    diagonal = float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))
    back = total = 0
    for loop in boundary_loops(faces):
        points = vertices[loop]
        if _length(points) <= LOOP_SHARE * diagonal:
            continue
        total += 1
        back += bool(tree is not None and np.mean(tree.query(points)[0] <= BACK_CELLS * cell) > BACK_SHARE)
    return back, total


def measure(path) -> dict:
    from ksc import decode
    from ksc.encoding.config import preset_options
    from ksc.encoding.pipeline import encode
    from ksc.format import Container, read_container, write_container
    from ksc.mesh.io import load_mesh
    from ksc.mesh.metrics import compare_meshes
    from ksc.mesh.normalize import Transform

    source = load_mesh(path)
    data = encode(source, preset_options("default")).data
    container = read_container(data)
    capped = write_container(Container(meta={k: v for k, v in container.meta.items() if k != "holes"}, tensors=container.tensors))
    cell = 2 * container.meta["bound"] / 191 * Transform.fit(source.vertices).scale
    row = {"holes": len(container.meta.get("holes", []))}
    for name, blob in (("capped", capped), ("kept", data)):
        decoded = decode(blob)
        error = compare_meshes(source, decoded)
        back, total = loops_back(source, decoded, cell)
        row.update({f"{name}_bytes": len(blob), f"{name}_p99": error.p99, f"{name}_hausdorff": error.hausdorff})
        row.update({f"{name}_chamfer": error.chamfer_l1, f"{name}_back": back, "loops": total})
    return row


COLUMNS = [
    ("mesh", "mesh", "s"),
    ("holes", "loops stored", "d"),
    ("capped_bytes", "bytes capped", ",d"),
    ("kept_bytes", "bytes kept", ",d"),
    ("capped_p99", "p99 capped", ".4f"),
    ("kept_p99", "p99 kept", ".4f"),
    ("draco_p99", "Draco p99", ".4f"),
    ("capped_hausdorff", "Hausdorff capped", ".3f"),
    ("kept_hausdorff", "Hausdorff kept", ".3f"),
    ("capped_chamfer", "Chamfer-L1 capped", ".5f"),
    ("kept_chamfer", "Chamfer-L1 kept", ".5f"),
    ("kept_back", "loops back", "d"),
    ("loops", "of loops", "d"),
]

TITLE = "Holes kept open (format 5.1) against the same file capped"
NOTE = (
    "Distances in the input's normalized frame; Draco's p99 from rd.json (the full rival at the default file's"
    " bytes, before holes)."
)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=int, default=0, help="Also this many open corpus meshes (seeded draw).")
    parser.add_argument("--suffix", default="")
    args = parser.parse_args(argv)

    rival = {row["mesh"]: row for row in json.loads((RESULTS / "rd.json").read_text())["rows"]}
    paths = [folder / name for folder in MESH_FOLDERS for name in OPEN_MESHES if (folder / name).is_file()]
    paths += corpus_picks(args.corpus) if args.corpus else []
    rows = []
    for path in paths:
        row = {"mesh": path.name, **measure(path)}
        if path.name in rival:
            row["draco_p99"] = rival[path.name]["draco_p99"]
        rows.append(row)
        print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
    write_table(results_name("holes", args.suffix), TITLE, NOTE, COLUMNS, rows)


if __name__ == "__main__":
    main()
