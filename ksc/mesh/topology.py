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


def face_components(faces: np.ndarray) -> np.ndarray:
    """The connected piece (F,) int64, numbered 0.. in order of first face, of each triangle of ``faces`` (F, 3):
    triangles that share an edge (by vertex index) are in the same piece."""
    count = len(faces)
    edges = np.sort(faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    owner = np.repeat(np.arange(count, dtype=np.int64), 3)
    order = np.lexsort((edges[:, 1], edges[:, 0]))
    edges, owner = edges[order], owner[order]
    same = np.all(edges[1:] == edges[:-1], axis=1)
    a, b = owner[:-1][same], owner[1:][same]
    parent = np.arange(count, dtype=np.int64)
    while True:  # hook the larger root of each joined pair under the smaller, then flatten the trees
        root_a, root_b = parent[a], parent[b]
        apart = root_a != root_b
        if not apart.any():
            break
        low = np.minimum(root_a[apart], root_b[apart])
        np.minimum.at(parent, root_a[apart], low)
        np.minimum.at(parent, root_b[apart], low)
        while True:
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    _, labels = np.unique(parent, return_inverse=True)
    return labels.reshape(-1)
