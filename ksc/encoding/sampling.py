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

import math
import time
from dataclasses import dataclass

import igl
import numpy as np
import trimesh

from ksc.encoding.config import DISTANCES, NEAR_SIGMA
from ksc.mesh.sampling import WindingNumber, in_original_order, sample_surface, spatial_order
from ksc.mesh.topology import boundary_edges, is_closed_surface, weld_by_position

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


CLEAR_INSIDE = 0.9
"""An open mesh encloses a volume when its winding number exceeds this somewhere on a grid of :data:`VOLUME_NODES`^3:
open scans and open corpus meshes with a volume reach 1.0-2.0 there, a wavy square 0.59, a bowl 0.89 and an
open tube 0.82 (their winding number never settles at 1)."""
VOLUME_NODES = 48


class SignedDistance:
    """Signed distance (positive inside) to a mesh in the normalized frame.

    The sign comes from the generalized winding number (libigl): inside where
    |w| > 0.5. pysdf's own sign casts rays in a frame drawn from a time-seeded
    generator, so on open meshes it changes from run to run; the winding number
    is deterministic, robust on open scans and soups, and the same inside/outside
    test that :mod:`ksc.mesh.metrics` scores IoU with.

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
        return in_original_order(distance, order)

    def encloses_volume(self) -> bool:
        """Whether the mesh has an inside a volume's network can describe: it is closed, or its winding number
        is clearly whole somewhere on a grid of :data:`VOLUME_NODES`^3 over [-1, 1]^3 (:data:`CLEAR_INSIDE`);
        otherwise it is a sheet."""
        if self.closed:
            return True
        axis = np.linspace(-1.0, 1.0, VOLUME_NODES)
        nodes = np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)
        return bool(np.any(self._winding.values(nodes) > CLEAR_INSIDE))

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
        return in_original_order(np.where(inside, distance, -distance), order)

    def _unsigned_of_ordered(self, points: np.ndarray) -> np.ndarray:
        """Distance (N,) float32 from ``points`` (N, 3) float64, already in :func:`spatial_order`."""
        if self.backend == "pysdf":
            return np.abs(np.asarray(self._pysdf(points.astype(np.float32)), dtype=np.float32))
        return np.sqrt(self._tree.squared_distance(self._vertices, self._faces, points)[0]).astype(np.float32)


def sample_sdf(
    mesh: trimesh.Trimesh,
    signed_distance: SignedDistance | ShellDistance,
    count: int,
    bound: float,
    rng: np.random.Generator,
    uniform_share: float = UNIFORM_SHARE,
    near_sigma: float = NEAR_SIGMA,
    shell: float | None = None,
) -> SdfSamples:
    """Draw ``count`` training points following :func:`sample_mix`.

    For a sheet (``shell``, the half-thickness of the shell around it), the ``near`` points straddle the shell's
    surface rather than the sheet: each is moved by ``shell`` to one side of its face, or, for a share of them
    that grows with the sheet's boundary (:func:`rim_share`), drawn around the rim, ``shell`` away from a point
    of the boundary in a random direction across it.

    Parameters
    ----------
    mesh : trimesh.Trimesh
        Mesh already in the normalized frame.
    signed_distance : SignedDistance or ShellDistance
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
    shell : float, optional
        For a sheet, the half-thickness of the shell the samples describe.
    """
    parts = []
    for name, n, sigma in sample_counts(count, uniform_share, near_sigma):
        if sigma is None:
            parts.append(rng.uniform(-bound, bound, size=(n, 3)))
        elif shell is not None and name == "near":
            parts.append(_around_shell(mesh, n, shell, rng) + rng.normal(scale=sigma, size=(n, 3)))
        else:
            surface = sample_surface(mesh, n, rng)
            parts.append(surface + rng.normal(scale=sigma, size=(n, 3)))
    points = np.clip(np.concatenate(parts), -bound, bound).astype(np.float32)
    return SdfSamples(points=points, sdf=signed_distance(points))


RIM_WEIGHT = 3.0
"""The rim of a sheet's shell gets this many times its share of the shell's area in ``near`` points: it is where
the shell bends and the decoded sheet ends."""


def rim_share(area: float, boundary_length: float, shell: float) -> float:
    """Share of a sheet's ``near`` points drawn around its rim: :data:`RIM_WEIGHT` times the rim's share of the
    shell's area (two sides of ``area``, a half-tube of radius ``shell`` along ``boundary_length``), at most 1/2."""
    rim = math.pi * shell * boundary_length
    return min(0.5, RIM_WEIGHT * rim / (rim + 2.0 * area))


def _around_shell(mesh: trimesh.Trimesh, count: int, shell: float, rng: np.random.Generator) -> np.ndarray:
    """``count`` points (count, 3) on the shell of half-thickness ``shell`` around the sheet ``mesh``."""
    vertices, faces = weld_by_position(mesh.vertices, mesh.faces)
    rim_edges = boundary_edges(faces)
    starts, ends = vertices[rim_edges[:, 0]], vertices[rim_edges[:, 1]]
    lengths = np.linalg.norm(ends - starts, axis=1)
    rims = int(round(count * rim_share(float(mesh.area), float(lengths.sum()), shell))) if len(lengths) else 0
    points, face_index = sample_surface(mesh, count - rims, rng, return_faces=True)
    normals = np.asarray(mesh.face_normals, dtype=np.float64)[face_index]
    side = rng.choice((-1.0, 1.0), size=(len(points), 1))
    parts = [points + side * shell * normals]
    if rims:
        edge = np.searchsorted(np.cumsum(lengths), rng.uniform(0.0, lengths.sum(), size=rims), side="right")
        edge = np.minimum(edge, len(lengths) - 1)
        along = ends[edge] - starts[edge]
        base = starts[edge] + rng.uniform(size=(rims, 1)) * along
        direction = rng.normal(size=(rims, 3))
        axis = along / np.maximum(np.linalg.norm(along, axis=1, keepdims=True), 1e-12)
        direction -= np.einsum("ij,ij->i", direction, axis)[:, None] * axis  # across the boundary, not along it
        direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
        parts.append(base + shell * direction)
    return np.concatenate(parts)


class ShellDistance:
    """Signed distance (positive inside) to the shell of half-thickness ``thickness`` around a sheet: ``t - d``,
    ``d`` the exact distance of ``distance`` (``ksc.mesh.sheets``), whose tree it queries and whose
    :attr:`SignedDistance.seconds` it adds to. The shell bounds its volume, so the key spheres' coarse-to-fine
    search applies (:attr:`closed`)."""

    closed = True

    def __init__(self, distance: SignedDistance, thickness: float):
        if distance.backend != "exact":
            raise ValueError(f"a sheet's shell needs the exact distance, got {distance.backend!r}")
        self._distance = distance
        self.thickness = float(thickness)
        self.seconds = distance.seconds

    def unsigned(self, points: np.ndarray) -> np.ndarray:
        """Distance (N,) float32 from ``points`` (N, 3) to the shell's surface."""
        return np.abs(self.thickness - self._distance.unsigned(points))

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (N,) float32 at ``points`` (N, 3): positive within ``thickness`` of the sheet."""
        return (self.thickness - self._distance.unsigned(points)).astype(np.float32)
