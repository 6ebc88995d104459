"""Points on and in a mesh: area-weighted surface samples, the generalized winding number's inside test, a
spatial order that keeps nearby queries together."""

from __future__ import annotations

import igl
import numpy as np
import trimesh


def in_original_order(values: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``values`` computed for ``points[order]``, put back in the order of ``points``."""
    result = np.empty_like(values)
    result[order] = values
    return result


MORTON_BITS = 10
"""Bits per axis of the grid :func:`spatial_order` sorts along (cells of 2/1024 in the unit box)."""


def spatial_order(points: np.ndarray) -> np.ndarray:
    """Indices (N,) that sort ``points`` (N, 3) along a Z-order (Morton) curve.

    libigl answers each distance or winding-number query on its own, walking a
    tree of the faces; queries in random order walk it from cold caches, and
    those near the surface of a mesh with many small faces cost most. Sorted
    queries give the same values (each is computed alone), sooner: thingi_76277's
    training distances took 6.5 s instead of 13.4 s (docs/method.md).
    """
    points = np.asarray(points, dtype=np.float64)
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    low, high = points.min(axis=0), points.max(axis=0)
    scale = (2**MORTON_BITS - 1) / np.maximum(high - low, 1e-12)
    cells = ((points - low) * scale).astype(np.uint64)
    code = np.zeros(len(points), dtype=np.uint64)
    for bit in range(MORTON_BITS):
        for axis in range(3):
            code |= ((cells[:, axis] >> np.uint64(bit)) & np.uint64(1)) << np.uint64(3 * bit + axis)
    return np.argsort(code, kind="stable")


FAST_ACCURACY, ACCURACY = 1.25, 2.0
"""libigl's Barnes-Hut accuracy (its ``accuracy_scale``): clusters of faces nearer than this many times their radius are
summed face by face. 2 is libigl's recommended value. With 1.25 first, the inside test of 250k training-like points
took a median 2.3x less time on the 25 meshes (research/design/results/winding.md), its winding numbers within 0.064 of
2's; below 1 the far-field series stops converging (0.75 put thousands of points on the wrong side)."""
DOUBT = 0.4
"""A point whose fast winding number lies within this of 1/2 is recomputed at :data:`ACCURACY`: the inside test then
agrees with libigl's recommended accuracy wherever the fast value is off by less than this."""


class WindingNumber:
    """Inside test by generalized winding number, |w| > 1/2 (libigl's fast winding number of a triangle soup).

    Its hierarchy of the faces is built once. Each query is answered at :data:`FAST_ACCURACY`, then the
    doubtful ones (:data:`DOUBT`) again at :data:`ACCURACY`: on a closed surface w is an integer away from
    the surface, so doubt comes only from the approximation, and an open scan's smooth w across its holes
    is decided at full accuracy. On 250k near-surface and uniform points of each of the 25 meshes, the same
    inside as one pass at :data:`ACCURACY` (``research/design/winding.py``).

    Parameters
    ----------
    vertices : (V, 3) float64
    faces : (F, 3) int64
    """

    def __init__(self, vertices: np.ndarray, faces: np.ndarray):
        self._hierarchy = igl.FastWindingNumberBVH()
        self._hierarchy.init(np.ascontiguousarray(vertices, dtype=np.float64), np.ascontiguousarray(faces, dtype=np.int64))

    def values(self, points: np.ndarray) -> np.ndarray:
        """The winding number's magnitude (N,) float64 at ``points`` (N, 3), at :data:`ACCURACY`."""
        return np.abs(self._hierarchy.winding_number(np.ascontiguousarray(points, dtype=np.float64), ACCURACY))

    def inside(self, points: np.ndarray) -> np.ndarray:
        """Inside mask (N,) of ``points`` (N, 3) float64, best in :func:`spatial_order`."""
        points = np.ascontiguousarray(points, dtype=np.float64)
        if len(points) == 0:
            return np.zeros(0, dtype=bool)
        winding = np.abs(self._hierarchy.winding_number(points, FAST_ACCURACY))
        doubtful = np.flatnonzero(np.abs(winding - 0.5) < DOUBT)
        if len(doubtful):
            winding[doubtful] = np.abs(self._hierarchy.winding_number(points[doubtful], ACCURACY))
        return winding > 0.5


def inside_by_winding_number(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Boolean (N,) mask of ``points`` (N, 3) with generalized winding number |w| > 0.5 (:class:`WindingNumber`)."""
    points = np.asarray(points, dtype=np.float64)
    order = spatial_order(points)
    return in_original_order(WindingNumber(vertices, faces).inside(points[order]), order)


def sample_surface(mesh: trimesh.Trimesh, count: int, rng: np.random.Generator, return_faces: bool = False):
    """Area-weighted uniform samples (count, 3) float64 on the mesh surface (and, if asked, their faces (count,))."""
    triangles = np.asarray(mesh.triangles, dtype=np.float64)
    areas = np.asarray(mesh.area_faces, dtype=np.float64)
    cumulative = np.cumsum(areas)
    faces = np.searchsorted(cumulative, rng.uniform(0.0, cumulative[-1], size=count), side="right")
    faces = np.minimum(faces, len(areas) - 1)
    u, v = rng.uniform(size=(2, count))
    flip = u + v > 1.0
    u[flip], v[flip] = 1.0 - u[flip], 1.0 - v[flip]
    a, b, c = triangles[faces, 0], triangles[faces, 1], triangles[faces, 2]
    points = a + u[:, None] * (b - a) + v[:, None] * (c - a)
    return (points, faces) if return_faces else points
