"""Sheets: surfaces with no inside (a flat outline, a single-sided shell), encoded as the thin shell around them.

A key-sphere network describes a volume. For a surface that encloses none, the encoder describes the shell of
half-thickness ``t`` around it instead: the signed distance ``t - d`` (positive inside), ``d`` the distance to
the sheet, whose zero level is the sheet offset by ``t`` to both sides and wrapped round its rim (format 5.1,
SPEC.md "Sheets"). The decoder extracts that shell and takes it back to one side (:func:`collapse_shell`):
every vertex moves by ``t`` against its outward normal, which puts both layers on the sheet and the rim on
the sheet's boundary; the rim's triangles, folded over by the move, are dropped (not a few folded slivers
alone), which leaves each side of the sheet as its own piece; of two pieces that lie on each other, the larger
is kept.
"""

from __future__ import annotations

import math

import numpy as np

from ksc.mesh.topology import area_vectors, compact, face_components

THICKNESS = 0.02
"""Half-thickness ``t`` of the shell, normalized frame (the mesh fills [-1, 1]^3): 1.8 cells of the default
192^3 decode grid, so that marching cubes sees both layers everywhere (a file may state 0.001 to 0.25:
``ksc.format.container.check_sheet``)."""
CELLS_ACROSS = 2.4
"""A sheet decodes on a grid whose cells are at most ``2 t / CELLS_ACROSS``: a coarser grid loses one layer of the
shell in places and tears holes into the sheet (:func:`min_resolution`). 2.4 lets the JS decoder's default 128 cells read
the default shell."""
KEPT_AREA = 0.5
"""A triangle is kept when, moved onto the sheet, it still faces its own way with this share of its area; the
rim's triangles fold onto the sheet's boundary and keep almost none."""
MAX_TEAR_FACES = 24
"""Folded triangles in a connected patch of at most this many are kept: marching cubes' slivers fold too when
moved, and dropping them tore holes of a cell into the sides (in the JS decoder, whose normals come from the grid,
dozens on the golden sheet); the rim is one band of thousands along each boundary."""
TWIN_SHARE = 0.5
"""A piece whose vertices lie, for more than this share, within a cell of ``t`` of a larger kept piece is the
other side of that piece, and is dropped."""

MIN_SHEET_FACES = 2000
"""A sheet's default output has at least this many faces: decimation moves its boundary, and on an open tube of
96 faces the default target (192) took the Chamfer-L1 from 0.00017 to 0.069; at 1000 faces and more it stays
within 0.00015-0.00017."""


def min_resolution(thickness: float, bound: float) -> int:
    """Grid nodes per axis (over [-bound, bound]) that resolve a shell of half-thickness ``thickness``."""
    return int(math.ceil(2.0 * bound * CELLS_ACROSS / (2.0 * thickness))) + 1


def collapse_shell(
    vertices: np.ndarray, faces: np.ndarray, normals: np.ndarray, thickness: float
) -> tuple[np.ndarray, np.ndarray]:
    """One side of a thin shell, moved onto the sheet it was wrapped around.

    Parameters
    ----------
    vertices : (V, 3) float64
        The extracted shell (normalized frame).
    faces : (F, 3) int64
        Its outward-facing triangles.
    normals : (V, 3) float64
        Outward unit vertex normals (the field's).
    thickness : float
        The shell's half-thickness ``t``.

    Returns
    -------
    vertices : (V', 3) float64
        The vertices the kept triangles use, each moved by ``t`` against its normal.
    faces : (F', 3) int64
        The kept triangles, renumbered; they face the way the kept side of the shell faced.
    """
    moved = vertices - thickness * normals
    before = area_vectors(vertices, faces)
    after = area_vectors(moved, faces)
    size = np.linalg.norm(before, axis=1)
    facing = np.einsum("ij,ij->i", after, before) / np.maximum(size, 1e-300)
    rim = np.flatnonzero(facing <= KEPT_AREA * size)
    if len(rim):  # a few folded triangles inside a side are a sliver's, not the rim's: they stay
        pieces = face_components(faces[rim])
        rim = rim[np.bincount(pieces)[pieces] > MAX_TEAR_FACES]
    faces = np.delete(faces, rim, axis=0)
    if len(faces) == 0:
        return np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64)
    labels = face_components(faces)
    area = np.bincount(labels, weights=np.linalg.norm(area_vectors(moved, faces), axis=1))
    occupied = np.zeros(0, dtype=np.int64)
    kept = np.zeros(len(area), dtype=bool)
    for piece in np.argsort(-area, kind="stable"):
        corners = np.unique(faces[labels == piece])
        cells = _cells(moved[corners], thickness)
        if len(occupied) and np.mean(np.isin(cells, occupied)) > TWIN_SHARE:
            continue
        kept[piece] = True
        occupied = np.union1d(occupied, _neighbourhood(cells))
    faces = faces[kept[labels]]
    return compact(moved, faces)


CELL_BITS = 20


def _cells(points: np.ndarray, size: float) -> np.ndarray:
    """The cell (of edge ``size``) each point lies in, as one int64 key."""
    index = np.floor(points / size).astype(np.int64) + (1 << (CELL_BITS - 1))
    return (index[:, 0] << (2 * CELL_BITS)) | (index[:, 1] << CELL_BITS) | index[:, 2]


def _neighbourhood(cells: np.ndarray) -> np.ndarray:
    """The keys of ``cells`` and of their 26 neighbours."""
    steps = np.array([(x << (2 * CELL_BITS)) + (y << CELL_BITS) + z for x in (-1, 0, 1) for y in (-1, 0, 1) for z in (-1, 0, 1)])
    return np.unique((cells[:, None] + steps[None, :]).reshape(-1))
