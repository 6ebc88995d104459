"""The encoder's check of its own file: does what the file decodes to describe the input?

A file can be well formed and still describe the wrong shape: a training that
went astray, quantization that broke the field, an input whose inside the
winding number could not tell. Before a file is written, its field is rebuilt
from the bytes alone (as the decoder does), its zero level extracted on a coarse
grid and compared with the input in the normalized frame:

* **Chamfer-L1** between the coarse decoded surface and the input surface, each
  way over :data:`CHECK_SAMPLES` area-weighted samples, averaged: a shape that is
  not the input's (ghost sheets, a missing part, a wrong surface) is far off.
* **IoU** of the inside (field > 0 on the decoder's side, generalized winding
  number > 0.5 on the input's) over :data:`CHECK_SAMPLES` uniform points.

A sheet's file is checked as the decoder reads it: its shell extracted on a grid fine enough for it and taken
to one side (``ksc.mesh.sheets``), the inside being the shell's (within its half-thickness of the input).

The thresholds sit several times beyond the worst that the default preset reaches
on the shared meshes at this grid (see :data:`MAX_CHAMFER`), so a correct file of
a hard mesh passes and a wrong shape does not.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import trimesh

from ksc.decoding.extract import extract_mesh
from ksc.decoding.pipeline import load_field
from ksc.decoding.surface import field_normals
from ksc.mesh.metrics import surface_distances, volume_iou
from ksc.mesh.sampling import inside_by_winding_number, sample_surface
from ksc.mesh.sheets import collapse_shell, min_resolution
from ksc.models.runtime import one_blas_thread

CHECK_RESOLUTION = 96
"""Grid of the check's extraction: coarse (0.2-0.4 s), its own discretization error well under the thresholds."""
CHECK_SAMPLES = 2**15  # samples per side of the check's Chamfer-L1: a quarter of ksc compare's (a bound, not a score)
MAX_CHAMFER = 0.02
"""Chamfer-L1 (normalized frame, mesh in [-1, 1]^3) at :data:`CHECK_RESOLUTION` above which a file is wrong."""
MIN_IOU = 0.8
"""IoU of the inside below which a file is wrong."""


@dataclass(frozen=True)
class FileCheck:
    """How far a file's coarse decode lies from the input it was encoded from (normalized frame)."""

    chamfer_l1: float
    iou: float

    @property
    def passed(self) -> bool:
        return self.chamfer_l1 <= MAX_CHAMFER and self.iou >= MIN_IOU

    def describe(self) -> str:
        return f"Chamfer-L1 {self.chamfer_l1:.4f} (limit {MAX_CHAMFER}), IoU {self.iou:.3f} (limit {MIN_IOU})"

    def to_dict(self) -> dict:
        return asdict(self)


def check_file(data: bytes, unit_mesh: trimesh.Trimesh, seed: int = 0) -> FileCheck:
    """Compare what ``data`` decodes to with ``unit_mesh``, the input in the file's normalized frame.

    Parameters
    ----------
    data : bytes
        The ``.ksc`` file.
    unit_mesh : trimesh.Trimesh
        The input mesh mapped into [-1, 1]^3 with the file's transform (the encoder's ``unit`` mesh).
    seed : int
        Seed of the sample points (fixed: the same file and mesh always score the same).
    """
    decoded = load_field(data)
    sheet = decoded.sheet
    resolution = CHECK_RESOLUTION if sheet is None else max(CHECK_RESOLUTION, min_resolution(sheet, decoded.bound))
    with one_blas_thread():
        extraction = extract_mesh(decoded.field, resolution, decoded.bound)
        cand_v, cand_f = extraction.vertices, extraction.faces
        if sheet is not None and len(cand_f):
            cand_v, cand_f = collapse_shell(cand_v, cand_f, field_normals(decoded.field, cand_v), sheet)
        rng = np.random.default_rng(seed)
        probes = rng.uniform(-decoded.bound, decoded.bound, size=(CHECK_SAMPLES, 3))
        inside_file = decoded.field(probes.astype(np.float32)) > 0.0
    ref_v = np.ascontiguousarray(unit_mesh.vertices, dtype=np.float64)
    ref_f = np.ascontiguousarray(unit_mesh.faces, dtype=np.int64)
    if sheet is None:
        inside_input = inside_by_winding_number(ref_v, ref_f, probes)
    else:
        inside_input = surface_distances(probes, ref_v, ref_f)[0] < sheet
    iou = volume_iou(inside_file, inside_input)
    if len(cand_f) == 0:
        return FileCheck(chamfer_l1=float("inf"), iou=iou)
    ref_points = sample_surface(unit_mesh, CHECK_SAMPLES, rng)
    cand_points = sample_surface(trimesh.Trimesh(cand_v, cand_f, process=False), CHECK_SAMPLES, rng)
    to_cand, _ = surface_distances(ref_points, cand_v, cand_f)
    to_ref, _ = surface_distances(cand_points, ref_v, ref_f)
    return FileCheck(chamfer_l1=float((to_cand.mean() + to_ref.mean()) / 2.0), iou=iou)
