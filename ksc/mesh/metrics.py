"""Geometric error between an input mesh and its reconstruction.

Definitions (the project's; both meshes are first mapped with the *input's*
normalization, bbox centre to the origin and longest half-extent to 1):

* **Chamfer-L1**: 2^17 area-weighted samples on each surface; the mean exact
  point-to-surface distance each way (libigl ``point_mesh_squared_distance``),
  averaged over the two directions.
* **Hausdorff**: the largest of those point-to-surface distances, both ways.
* **p99**: the 99th percentile of those distances in each direction, the
  larger of the two: the worst places (ghost pieces, eroded thin parts)
  without the single farthest sample that Hausdorff reports.
* **Normal error**: the mean angle, in degrees, between the face normal at
  each sample and the normal of the nearest face of the other mesh,
  orientation ignored, averaged over the two directions: facets and bumps.
* **IoU**: 2^18 uniform points in [-1.05, 1.05]^3; a point is inside a mesh
  when its generalized winding number (libigl ``fast_winding_number``) exceeds
  0.5 in magnitude, which stays meaningful for open meshes and soups; the
  reference's inside is that of its winding as the encoder repairs it
  (:func:`ksc.mesh.io.consistently_wound`), since a mesh with faces flipped
  against their neighbours has no clear inside of its own.

Sampling uses a fixed seed, so the same pair of meshes always scores the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import igl
import numpy as np
import trimesh

from ksc.mesh.io import consistently_wound, face_normals
from ksc.mesh.normalize import Transform
from ksc.mesh.sampling import inside_by_winding_number, sample_surface

CHAMFER_SAMPLES = 2**17
IOU_SAMPLES = 2**18
IOU_BOUND = 1.05


@dataclass(frozen=True)
class MeshError:
    """Errors of a reconstruction, in units of the normalized frame."""

    chamfer_l1: float
    hausdorff: float
    iou: float
    p99: float
    normal_error: float

    def to_dict(self) -> dict:
        return asdict(self)


def compare_meshes(reference: trimesh.Trimesh, candidate: trimesh.Trimesh, seed: int = 0) -> MeshError:
    """Chamfer-L1, Hausdorff, IoU, p99 distance and normal error of ``candidate`` against ``reference``.

    Both meshes are given in the reference's original coordinates.
    """
    transform = Transform.fit(reference.vertices)
    ref_v, ref_f = _arrays(reference, transform)
    cand_v, cand_f = _arrays(candidate, transform)
    rng = np.random.default_rng(seed)

    ref_points, ref_faces = sample_surface(_unit(ref_v, ref_f), CHAMFER_SAMPLES, rng, return_faces=True)
    cand_points, cand_faces = sample_surface(_unit(cand_v, cand_f), CHAMFER_SAMPLES, rng, return_faces=True)
    to_cand, nearest_cand = surface_distances(ref_points, cand_v, cand_f)
    to_ref, nearest_ref = surface_distances(cand_points, ref_v, ref_f)
    ref_normals, cand_normals = face_normals(ref_v, ref_f), face_normals(cand_v, cand_f)
    angles = (
        _angles(ref_normals[ref_faces], cand_normals[nearest_cand]).mean()
        + _angles(cand_normals[cand_faces], ref_normals[nearest_ref]).mean()
    ) / 2.0

    probes = rng.uniform(-IOU_BOUND, IOU_BOUND, size=(IOU_SAMPLES, 3))
    wound = consistently_wound(trimesh.Trimesh(ref_v, ref_f, process=False))[0]
    inside_ref = inside_by_winding_number(wound.vertices, wound.faces, probes)
    inside_cand = inside_by_winding_number(cand_v, cand_f, probes)

    return MeshError(
        chamfer_l1=float((to_cand.mean() + to_ref.mean()) / 2.0),
        hausdorff=float(max(to_cand.max(), to_ref.max())),
        iou=volume_iou(inside_ref, inside_cand),
        p99=float(max(np.percentile(to_cand, 99), np.percentile(to_ref, 99))),
        normal_error=float(angles),
    )


def surface_distances(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact distances (N,) from ``points`` (N, 3) to the surface of ``vertices`` (V, 3) float64 and ``faces``
    (F, 3) int64 (libigl's AABB tree), and the index (N,) of each point's nearest face."""
    squared, nearest, _ = igl.point_mesh_squared_distance(points, vertices, faces)
    return np.sqrt(squared), nearest


def volume_iou(inside_a: np.ndarray, inside_b: np.ndarray) -> float:
    """Intersection over union of two boolean (N,) inside masks of the same probes (1 when both are empty)."""
    union = np.count_nonzero(inside_a | inside_b)
    return float(np.count_nonzero(inside_a & inside_b) / union) if union else 1.0


def _angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angles (N,) in degrees between the lines of unit vectors ``a`` and ``b`` (N, 3): orientation ignored."""
    return np.degrees(np.arccos(np.clip(np.abs((a * b).sum(1)), 0.0, 1.0)))


def _arrays(mesh: trimesh.Trimesh, transform: Transform) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.ascontiguousarray(transform.to_unit(mesh.vertices), dtype=np.float64)
    return vertices, np.ascontiguousarray(mesh.faces, dtype=np.int64)


def _unit(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
