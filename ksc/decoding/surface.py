"""From the marching-cubes mesh to the mesh a user gets: decimated, with the field's normals.

Marching cubes gives many times the faces of a typical input (the bunny at
192^3: 226k for 28k). Quadric edge collapse (fast-simplification) brings it
to a multiple of the face count the file records (:data:`FACES_PER_SOURCE_FACE`);
the vertex normals are the field's normalized gradient, so a viewer shades the
smooth surface the network describes rather than its facets.
"""

from __future__ import annotations

import numpy as np

from ksc.mesh.topology import area_vectors

FACES_PER_SOURCE_FACE = 2
"""The default output has twice the source mesh's faces: at 1x the Chamfer-L1 and normal error grew by up to
1.21x and 1.16x over the marching-cubes mesh (spot, 5.9k faces), at 2x the medians stay within 1.05x
(research/design/results/decimation.md)."""
DECIMATION_AGGRESSIVENESS = 3.0
"""fast-simplification's ``agg``: 7 (its default) gave 1.03-1.12x the Chamfer-L1 and 1.07-1.26x the normal error of
the 256^3 marching-cubes mesh at twice the source's faces, 3 gave 1.00-1.03x and 1.02-1.06x in about the same time,
and 1 stops short of the target (a one-off run on homer, rocker-arm and thingi_53159 before decimation.md, which
measures the chosen setting on every mesh)."""
FALLBACK_AGGRESSIVENESS = (7.0, 10.0)  # where the gentle pass stops short of the target: its default, then harder
TARGET_SLACK = 1.05  # a pass whose faces are within 5 % of the target is kept


def decimate(vertices: np.ndarray, faces: np.ndarray, target: int, finish: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Quadric edge collapse of (V, 3) vertices and (F, 3) faces to about ``target`` faces (never more than F).

    A gentle pass (:data:`DECIMATION_AGGRESSIVENESS`) may stop short of a large
    reduction (the golden torus's 45k faces to 1000: 1552); then, if ``finish``, faster passes
    finish the job from where it stopped. They tear an open boundary: a sheet (an open tube's, 180k faces to
    2000) went from Chamfer-L1 7.8e-5 to 9e-3 with them and to 3.1e-4 with the gentle pass alone (4240 faces).
    """
    if target >= len(faces):
        return vertices, faces
    import fast_simplification  # only a decimating decode needs it

    vertices = np.ascontiguousarray(vertices, dtype=np.float64)
    for aggressiveness in (DECIMATION_AGGRESSIVENESS, *(FALLBACK_AGGRESSIVENESS if finish else ())):
        vertices, faces = fast_simplification.simplify(
            vertices, np.ascontiguousarray(faces, dtype=np.int32), target_count=int(target), agg=aggressiveness
        )
        if len(faces) <= TARGET_SLACK * target:
            break
    return vertices.astype(np.float64), faces.astype(np.int64)


def field_normals(field, vertices: np.ndarray) -> np.ndarray:
    """Outward unit normals (V, 3): the negated, normalized gradient of the field (positive inside)."""
    _, gradients = field.values_and_gradients(vertices)
    normals = -gradients.astype(np.float64)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 1e-12)


def mesh_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals (V, 3): the area-weighted mean of the normals of the triangles (F, 3) around each vertex."""
    weighted = area_vectors(vertices, faces)
    normals = np.zeros_like(vertices, dtype=np.float64)
    for k in range(3):
        np.add.at(normals, faces[:, k], weighted)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 1e-12)
