"""Training points and their signed distance (positive inside).

The base mix, chosen because the network's error only matters where the
surface is, while uniform points keep the far field from drifting into ghost
surfaces:

======================  =====================================================
share                   points
======================  =====================================================
``near`` (50 %)         surface samples + Gaussian noise, sigma = 0.005
``mid`` (25 %)          surface samples + Gaussian noise, sigma = 0.03
``uniform`` (25 %)      uniform in the decode box [-bound, bound]^3
======================  =====================================================

The uniform share is an encoder option (``EncodeOptions.sample_uniform_share``:
10 % for trainings of 2000 steps or more, 25 % for shorter ones); the surface
shares keep their 2 : 1 ratio in what is left. Surface samples
are area-weighted. Distances come from :class:`SignedDistance` (exact by default).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import igl
import numpy as np
import trimesh

from ksc.config import DISTANCES, NEAR_SIGMA

SAMPLE_MIX = (("near", 0.50, NEAR_SIGMA), ("mid", 0.25, 0.03), ("uniform", 0.25, None))
UNIFORM_SHARE = SAMPLE_MIX[-1][1]


def sample_mix(
    uniform_share: float = UNIFORM_SHARE, near_sigma: float = NEAR_SIGMA
) -> tuple[tuple[str, float, float | None], ...]:
    """:data:`SAMPLE_MIX` with ``uniform_share`` of uniform points, the surface shares scaled to the rest,
    and ``near_sigma`` as the ``near`` kind's spread."""
    scale = (1.0 - uniform_share) / (1.0 - UNIFORM_SHARE)
    mix = []
    for name, share, sigma in SAMPLE_MIX:
        if sigma is None:
            mix.append((name, uniform_share, None))
        else:
            mix.append((name, share * scale, near_sigma if name == "near" else sigma))
    return tuple(mix)


def sample_counts(
    count: int, uniform_share: float = UNIFORM_SHARE, near_sigma: float = NEAR_SIGMA
) -> list[tuple[str, int, float | None]]:
    """``(name, points, sigma)`` of each kind in :func:`sample_mix`, in the order
    :func:`sample_sdf` draws them; the last kind takes the rounding remainder."""
    mix = sample_mix(uniform_share, near_sigma)
    counts = [int(round(count * share)) for _, share, _ in mix[:-1]]
    counts.append(count - sum(counts))
    return [(name, n, sigma) for (name, _, sigma), n in zip(mix, counts, strict=True)]


@dataclass(frozen=True)
class SdfSamples:
    """Points with their signed distance.

    Attributes
    ----------
    points : (N, 3) float32
        Query positions in the normalized frame.
    sdf : (N,) float32
        Signed distance to the surface, positive inside.
    """

    points: np.ndarray
    sdf: np.ndarray


class SignedDistance:
    """Signed distance (positive inside) to a mesh in the normalized frame.

    The sign comes from the generalized winding number (libigl): inside where
    |w| > 0.5. pysdf's own sign casts rays in a frame drawn from a time-seeded
    generator, so on open meshes it changes from run to run; the winding number
    is deterministic, robust on open scans and soups, and the same inside/outside
    test that :mod:`ksc.metrics` scores IoU with.

    The distance is exact by default: the nearest point on any face, found
    through libigl's AABB tree. ``backend="pysdf"`` is several times faster
    but approximate: it looks only at faces near the nearest vertices, and on
    the training samples of the dragon 12 % of the near-surface distances were
    off by more than 1e-3 (thingi_76277: 30 %, mean error 0.02, ten times the
    codec's Chamfer error), so the network learnt a wrong surface there
    (``research/design/distance.py`` measures both).

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Mesh in the normalized frame.
    backend : str
        One of :data:`DISTANCES`.
    """

    def __init__(self, mesh: trimesh.Trimesh, backend: str = "exact"):
        if backend not in DISTANCES:
            raise ValueError(f"distance backend must be one of {DISTANCES}, got {backend!r}")
        self._vertices = np.ascontiguousarray(mesh.vertices, dtype=np.float64)
        self._faces = np.ascontiguousarray(mesh.faces, dtype=np.int64)
        if backend == "pysdf":
            import pysdf  # only this optional backend needs it

            self._pysdf = pysdf.SDF(self._vertices.astype(np.float32), self._faces.astype(np.uint32), robust=False)
        else:
            self._tree = igl.AABB()
            self._tree.init(self._vertices, self._faces)
        self._winding = WindingNumber(self._vertices, self._faces)
        self.backend = backend
        self.closed = is_closed_surface(self._vertices, self._faces)
        """Whether the surface bounds its volume (:func:`is_closed_surface`): then the winding number is an
        integer away from the surface, so the sign is the same all over any ball that holds no face."""
        self.seconds = {"distances": 0.0, "signs": 0.0}
        """Time spent so far on distance and on sign (winding-number) queries (encode profiles)."""

    def unsigned(self, points: np.ndarray) -> np.ndarray:
        """Distance (N,) float32 from ``points`` (N, 3) to the surface."""
        points = np.asarray(points, dtype=np.float64)
        order = spatial_order(points)
        start = time.perf_counter()
        distance = self._unsigned_of_ordered(points[order])
        self.seconds["distances"] += time.perf_counter() - start
        return _in_original_order(distance, order)

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Signed distance at ``points`` (N, 3); returns (N,) float32."""
        points = np.asarray(points, dtype=np.float64)
        order = spatial_order(points)
        ordered = points[order]
        start = time.perf_counter()
        distance = self._unsigned_of_ordered(ordered)
        middle = time.perf_counter()
        inside = self._winding.inside(ordered)
        self.seconds["distances"] += middle - start
        self.seconds["signs"] += time.perf_counter() - middle
        return _in_original_order(np.where(inside, distance, -distance), order)

    def _unsigned_of_ordered(self, points: np.ndarray) -> np.ndarray:
        """Distance (N,) float32 from ``points`` (N, 3) float64, already in :func:`spatial_order`."""
        if self.backend == "pysdf":
            return np.abs(np.asarray(self._pysdf(points.astype(np.float32)), dtype=np.float32))
        return np.sqrt(self._tree.squared_distance(self._vertices, self._faces, points)[0]).astype(np.float32)


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
    _, node = np.unique(np.asarray(vertices, dtype=np.float64), axis=0, return_inverse=True)
    corners = node.reshape(-1)[np.asarray(faces, dtype=np.int64)]
    tails, heads = corners.reshape(-1), np.roll(corners, -1, axis=1).reshape(-1)
    count = np.int64(node.max()) + 1
    forward = np.sort(tails * count + heads)
    backward = np.sort(heads * count + tails)
    return bool(np.array_equal(forward, backward))


def _in_original_order(values: np.ndarray, order: np.ndarray) -> np.ndarray:
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
    return _in_original_order(WindingNumber(vertices, faces).inside(points[order]), order)


def sample_sdf(
    mesh: trimesh.Trimesh,
    signed_distance: SignedDistance,
    count: int,
    bound: float,
    rng: np.random.Generator,
    uniform_share: float = UNIFORM_SHARE,
    near_sigma: float = NEAR_SIGMA,
) -> SdfSamples:
    """Draw ``count`` training points following :func:`sample_mix`.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Mesh already in the normalized frame.
    signed_distance : SignedDistance
        Distance oracle for ``mesh``.
    count : int
        Total number of points.
    bound : float
        Half-size of the box the uniform points are drawn from.
    rng : numpy.random.Generator
        Source of randomness (the only one: same seed, same samples).
    uniform_share : float
        Share of points drawn uniformly in the box.
    near_sigma : float
        Spread of the ``near`` kind's offsets from the surface.
    """
    parts = []
    for _, n, sigma in sample_counts(count, uniform_share, near_sigma):
        if sigma is None:
            parts.append(rng.uniform(-bound, bound, size=(n, 3)))
        else:
            surface = sample_surface(mesh, n, rng)
            parts.append(surface + rng.normal(scale=sigma, size=(n, 3)))
    points = np.clip(np.concatenate(parts), -bound, bound).astype(np.float32)
    return SdfSamples(points=points, sdf=signed_distance(points))


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
