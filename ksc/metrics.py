"""Geometric error between an input mesh and its reconstruction.

Definitions (the project's; both meshes are first mapped with the *input's*
normalization, bbox centre to the origin and longest half-extent to 1):

* **Chamfer-L1**: 2^17 area-weighted samples on each surface; the mean exact
  point-to-surface distance each way (libigl ``point_mesh_squared_distance``),
  averaged over the two directions.
* **Hausdorff**: the largest of those point-to-surface distances, both ways.
* **IoU**: 2^18 uniform points in [-1.05, 1.05]^3; a point is inside a mesh
  when its generalized winding number (libigl ``fast_winding_number``) exceeds
  0.5 in magnitude, which stays meaningful for open meshes and soups.

Sampling uses a fixed seed, so the same pair of meshes always scores the same.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import igl
import numpy as np
import trimesh

from ksc.normalize import Transform
from ksc.sampling import inside_by_winding_number, sample_surface

CHAMFER_SAMPLES = 2**17
IOU_SAMPLES = 2**18
IOU_BOUND = 1.05


@dataclass(frozen=True)
class MeshError:
    """Errors of a reconstruction, in units of the normalized frame."""

    chamfer_l1: float
    hausdorff: float
    iou: float

    def to_dict(self) -> dict:
        return asdict(self)


def compare_meshes(reference: trimesh.Trimesh, candidate: trimesh.Trimesh, seed: int = 0) -> MeshError:
    """Chamfer-L1, Hausdorff and IoU of ``candidate`` against ``reference``.

    Both meshes are given in the reference's original coordinates.
    """
    transform = Transform.fit(reference.vertices)
    ref_v, ref_f = _arrays(reference, transform)
    cand_v, cand_f = _arrays(candidate, transform)
    rng = np.random.default_rng(seed)

    ref_points = sample_surface(_unit(ref_v, ref_f), CHAMFER_SAMPLES, rng)
    cand_points = sample_surface(_unit(cand_v, cand_f), CHAMFER_SAMPLES, rng)
    to_cand = np.sqrt(igl.point_mesh_squared_distance(ref_points, cand_v, cand_f)[0])
    to_ref = np.sqrt(igl.point_mesh_squared_distance(cand_points, ref_v, ref_f)[0])

    probes = rng.uniform(-IOU_BOUND, IOU_BOUND, size=(IOU_SAMPLES, 3))
    inside_ref = inside_by_winding_number(ref_v, ref_f, probes)
    inside_cand = inside_by_winding_number(cand_v, cand_f, probes)
    union = np.count_nonzero(inside_ref | inside_cand)
    iou = np.count_nonzero(inside_ref & inside_cand) / union if union else 1.0

    return MeshError(
        chamfer_l1=float((to_cand.mean() + to_ref.mean()) / 2.0),
        hausdorff=float(max(to_cand.max(), to_ref.max())),
        iou=float(iou),
    )


def _arrays(mesh: trimesh.Trimesh, transform: Transform) -> tuple[np.ndarray, np.ndarray]:
    vertices = np.ascontiguousarray(transform.to_unit(mesh.vertices), dtype=np.float64)
    return vertices, np.ascontiguousarray(mesh.faces, dtype=np.int64)


def _unit(vertices: np.ndarray, faces: np.ndarray) -> trimesh.Trimesh:
    return trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
