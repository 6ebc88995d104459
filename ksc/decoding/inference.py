"""Evaluating a field on points and grid nodes, in numpy.

A *field* is anything that maps points (N, 3) float32 in the normalized frame
to signed distances (N,) float32, positive inside: the decoder's
:class:`ksc.models.runtime.SphereField`, or an analytic shape in the tests. A field
that also has ``at_nodes(axis, nodes)`` evaluates grid nodes its own, faster
way (:meth:`ksc.models.runtime.SphereField.at_nodes`).
"""

from __future__ import annotations

import numpy as np


def point_values(field, points: np.ndarray) -> np.ndarray:
    """Signed distance (N,) float32 of ``field`` at ``points`` (N, 3)."""
    points = np.ascontiguousarray(points, dtype=np.float32)
    if not len(points):
        return np.empty(0, np.float32)
    return np.asarray(field(points), dtype=np.float32).reshape(len(points))


def node_values(field, axis: np.ndarray, nodes: np.ndarray) -> np.ndarray:
    """Signed distance (N,) float32 at grid nodes ``nodes`` (N, 3), integer indices into the coordinates ``axis`` (R,)."""
    if not len(nodes):
        return np.empty(0, np.float32)
    if hasattr(field, "at_nodes"):
        return field.at_nodes(axis, nodes)
    return point_values(field, axis[nodes])


def grid_axis(resolution: int, bound: float) -> np.ndarray:
    """Node coordinates (R,) float32 of a ``resolution``-node axis over [-bound, bound]."""
    return np.linspace(-bound, bound, resolution).astype(np.float32)
