"""The connectivity of a triangle mesh: welding by position (OBJ files split vertices at texture seams), closedness,
boundary edges, connected pieces, dropping unused vertices; and each triangle's area vector. numpy only, so that
the decoder (which cuts holes and takes sheets to one side) can use it."""

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


def boundary_edges(faces: np.ndarray) -> np.ndarray:
    """The edges (E, 2) int64 that one triangle of ``faces`` (F, 3) alone uses, each as (lower, higher) vertex
    index, in sorted order."""
    edges = np.sort(np.asarray(faces, dtype=np.int64)[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2), axis=1)
    unique, counts = np.unique(edges, axis=0, return_counts=True)
    return unique[counts == 1]


def compact(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The vertices that ``faces`` (F, 3) use, in their order, and the faces renumbered onto them."""
    used, renumbered = np.unique(faces, return_inverse=True)
    return vertices[used], renumbered.reshape(-1, 3)


def area_vectors(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Each triangle's normal times twice its area (F, 3), from ``vertices`` (V, 3) and ``faces`` (F, 3)."""
    a, b, c = (vertices[faces[:, k]] for k in range(3))
    return np.cross(b - a, c - a)
