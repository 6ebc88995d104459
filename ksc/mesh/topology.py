"""The connectivity of a triangle soup, read by position: vertices at the same position count as one (OBJ files
split them at texture seams). numpy only, so that the decoder (which cuts holes) can use it."""

from __future__ import annotations

import numpy as np


def weld_by_position(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct vertex positions (V', 3) float64 and ``faces`` (F, 3) renumbered onto them: vertices at the same
    position count as one (OBJ files split them at texture seams)."""
    distinct, node = np.unique(np.asarray(vertices, dtype=np.float64), axis=0, return_inverse=True)
    return distinct, node.reshape(-1)[np.asarray(faces, dtype=np.int64)]


def is_closed_surface(vertices: np.ndarray, faces: np.ndarray) -> bool:
    """Whether the oriented triangles ``faces`` (F, 3) over ``vertices`` (V, 3) have no boundary.

    Vertices at the same position count as one (OBJ files split them at texture seams). The surface is
    closed when every directed edge ``a -> b`` is matched by as many edges ``b -> a``: the chain of
    triangles then has no boundary, and its generalized winding number is an integer off the surface
    (1 inside a consistently wound solid, 0 outside), however the faces meet. Open scans and meshes with
    holes or faces wound against their neighbours are not closed.
    """
    if len(faces) == 0:
        return False
    distinct, corners = weld_by_position(vertices, faces)
    tails, heads = corners.reshape(-1), np.roll(corners, -1, axis=1).reshape(-1)
    count = np.int64(len(distinct))
    forward = np.sort(tails * count + heads)
    backward = np.sort(heads * count + tails)
    return bool(np.array_equal(forward, backward))
