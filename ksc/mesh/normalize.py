"""Mapping between a mesh's own coordinates and the codec's unit cube.

The codec works in a normalized frame: the mesh's bounding-box centre goes to
the origin and its longest half-extent becomes 1, so the mesh fills
[-1, 1]^3 along its longest axis. The same frame is used by
:mod:`ksc.mesh.metrics`, which makes errors comparable across meshes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ksc.errors import KscInputError


@dataclass(frozen=True)
class Transform:
    """Similarity transform ``normalized = (original - center) / scale``.

    Attributes
    ----------
    center : (3,) float64
        Bounding-box centre of the original mesh.
    scale : float
        Longest half-extent of the original bounding box (> 0).
    """

    center: np.ndarray
    scale: float

    @classmethod
    def fit(cls, vertices: np.ndarray) -> Transform:
        """Transform that maps ``vertices`` (N, 3) into [-1, 1]^3."""
        vertices = np.asarray(vertices, dtype=np.float64)
        lo, hi = vertices.min(axis=0), vertices.max(axis=0)
        scale = float((hi - lo).max() / 2.0)
        if not np.isfinite(scale) or scale <= 0.0:
            raise KscInputError("mesh has zero extent: all vertices coincide")
        return cls(center=(lo + hi) / 2.0, scale=scale)

    def to_unit(self, points: np.ndarray) -> np.ndarray:
        """Map original coordinates (N, 3) to the normalized frame."""
        return (np.asarray(points, dtype=np.float64) - self.center) / self.scale

    def to_original(self, points: np.ndarray) -> np.ndarray:
        """Map normalized coordinates (N, 3) back to the original frame."""
        return np.asarray(points, dtype=np.float64) * self.scale + self.center
