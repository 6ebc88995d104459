"""Holes: the input's boundary loops, stored as a few points each, and the cut that opens them again.

A key-sphere network describes a volume, so the decoded surface closes every hole of an open input with a
cap. The encoder stores each boundary loop longer than :data:`MIN_LOOP_SHARE` of the bounding-box diagonal as
a closed polygon of a few points (one per :data:`POINT_SPACING` of its length, :data:`MIN_POINTS` to
:data:`MAX_POINTS`), each coordinate an integer 0..255 across [-bound, bound] (format 5.1, SPEC.md "Holes").
The decoder removes the extracted triangles whose centroid lies inside a loop's polygon, seen along the normal
of the loop's best-fitting plane, and within the loop's own distance from that plane plus
:data:`THICKNESS_CELLS` grid cells of it: the cap. On the open bunny scan this took the 99th-percentile
distance from 0.022 to 0.0051 (Draco at about the same bytes: 0.0094; docs/results.md, "Holes"). A loop whose cap
region holds input surface of its own is not stored (:func:`_covered`), and after training the encoder drops
the loops whose cut removes no cap (``ksc.encoding.holes``): cutting there removed real geometry.
"""

from __future__ import annotations

import math

import numpy as np

from ksc.mesh.topology import boundary_edges, weld_by_position

MIN_LOOP_SHARE = 0.02
"""Loops shorter than this share of the bounding-box diagonal stay capped (the issue's bar for a kept loop)."""
POINT_SPACING = 0.1
"""One stored point per this much loop length (normalized frame): the bunny scan's five loops in 50 points, 228 bytes."""
MIN_POINTS, MAX_POINTS = 8, 64
MIN_AREA = 4e-4
"""Loops that enclose less than this (normalized frame; a 0.02-wide square) are slits: nothing is capped there to
cut (the mask thingi_96481's one loop over 2 % of the diagonal is a slit), so they are not stored."""
THICKNESS_CELLS = 2.0
"""A cap is cut within the loop's distance from its plane plus this many grid cells: it sags off the plane by
about a cell; 1 left slivers on the bunny scan, 2 and 4 cut the same faces."""
LEVELS = 255
DECODE_NODES = 192
"""The default decode grid (``ksc.decoding.config.DEFAULT_RESOLUTION``), whose cells the encoder's check measures in."""
RIM_CELLS = 3.0
MAX_COVERED = 0.05
"""A loop whose cap region (farther than :data:`RIM_CELLS` cells from its rim) holds input surface of more than
this share of its area is not stored: on random open meshes of the corpus, openings over other geometry lost
more than they gained (docs/results.md, "Holes")."""


def boundary_loops(faces: np.ndarray) -> list[np.ndarray]:
    """The closed boundary loops of a triangle mesh, as vertex indices in order (edges used by one face)."""
    neighbours: dict[int, list[int]] = {}
    for a, b in boundary_edges(faces).tolist():
        neighbours.setdefault(a, []).append(b)
        neighbours.setdefault(b, []).append(a)
    loops, seen = [], set()
    for start in sorted(neighbours):
        if start in seen:
            continue
        loop, previous, current = [start], -1, start
        seen.add(start)
        while True:  # a vertex where several loops meet is followed along one of them
            ahead = [v for v in neighbours[current] if v != previous and v not in seen]
            if not ahead:
                break
            previous, current = current, ahead[0]
            loop.append(current)
            seen.add(current)
        if len(loop) >= 3:
            loops.append(np.array(loop, np.int64))
    return loops


def encode_holes(vertices: np.ndarray, faces: np.ndarray, bound: float) -> list[list[int]]:
    """The 5.1 ``holes`` of a mesh in the normalized frame (vertices (V, 3), faces (F, 3)): per loop longer than
    :data:`MIN_LOOP_SHARE` of the diagonal, its points resampled by arc length and quantized, x, y, z flat."""
    diagonal = float(np.linalg.norm(vertices.max(axis=0) - vertices.min(axis=0)))
    # Vertices at the same place are one: a texture seam splits them in the file but is no hole.
    vertices, faces = weld_by_position(vertices, faces)
    holes = []
    for loop in boundary_loops(faces):
        closed = vertices[np.append(loop, loop[0])]
        steps = np.linalg.norm(np.diff(closed, axis=0), axis=1)
        length = float(steps.sum())
        if length <= MIN_LOOP_SHARE * diagonal:
            continue
        count = min(MAX_POINTS, max(MIN_POINTS, math.ceil(length / POINT_SPACING)))
        along = np.concatenate([[0.0], np.cumsum(steps)])
        at = np.linspace(0.0, length, count, endpoint=False)
        points = np.stack([np.interp(at, along, closed[:, axis]) for axis in range(3)], axis=1)
        area = _plane_area(points)
        if area < MIN_AREA or _covered(points, vertices, faces, area, 2.0 * bound / (DECODE_NODES - 1)):
            continue
        levels = np.clip(np.round((points + bound) / (2.0 * bound) * LEVELS), 0, LEVELS).astype(np.int64)
        holes.append(levels.reshape(-1).tolist())
    return holes


def decode_holes(holes: list[list[int]], bound: float) -> list[np.ndarray]:
    """The loops (K, 3) float64 of a file's ``holes``, in the normalized frame."""
    return [np.asarray(loop, np.float64).reshape(-1, 3) / LEVELS * (2.0 * bound) - bound for loop in holes]


def cut_holes(vertices: np.ndarray, faces: np.ndarray, loops: list[np.ndarray], cell: float) -> np.ndarray:
    """The faces (F', 3) of ``faces`` that are not in a loop's cap (vertices (V, 3) and ``cell``, the grid's
    node spacing, in the frame of ``loops``)."""
    if not loops or not len(faces):
        return faces
    centroids = vertices[faces].mean(axis=1)
    cap = np.zeros(len(faces), bool)
    for points in loops:
        cap |= cap_mask(points, centroids, cell)
    return faces[~cap]


def cap_mask(points: np.ndarray, queries: np.ndarray, cell: float, rim: float = 0.0) -> np.ndarray:
    """Which ``queries`` (N, 3) lie in the cap region of the loop ``points`` (K, 3): within the loop's distance
    from its best-fitting plane plus :data:`THICKNESS_CELLS` cells of it, and inside its polygon seen along the
    plane's normal, at least ``rim`` from the polygon's edges."""
    centre = points.mean(axis=0)
    _, _, axes = np.linalg.svd(points - centre)
    u, v, normal = axes
    thickness = float(np.abs((points - centre) @ normal).max()) + THICKNESS_CELLS * cell
    result = np.zeros(len(queries), bool)
    near = np.flatnonzero(np.abs((queries - centre) @ normal) <= thickness)
    polygon = np.stack([(points - centre) @ u, (points - centre) @ v], axis=1)
    flat = np.stack([(queries[near] - centre) @ u, (queries[near] - centre) @ v], axis=1)
    inside = _inside_polygon(polygon, flat)
    if rim > 0.0:
        inside &= _edge_distance(polygon, flat) > rim
    result[near[inside]] = True
    return result


def _edge_distance(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Distance (N,) of ``points`` (N, 2) to the closed ``polygon``'s (K, 2) edges."""
    best = np.full(len(points), np.inf)
    for a, b in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        edge = b - a
        t = np.clip(((points - a) @ edge) / max(float(edge @ edge), 1e-30), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(points - (a + t[:, None] * edge), axis=1))
    return best


def _covered(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, area: float, cell: float) -> bool:
    """Whether the input has surface of its own in the loop's cap region (away from the rim): a cut there would
    remove it, so such a loop (a part's edge over other geometry, a shell's opening onto an inner wall) is not
    a hole to keep open."""
    triangles = vertices[faces]
    inside = cap_mask(points, triangles.mean(axis=1), cell, rim=RIM_CELLS * cell)
    cross = np.cross(triangles[inside, 1] - triangles[inside, 0], triangles[inside, 2] - triangles[inside, 0])
    return 0.5 * float(np.linalg.norm(cross, axis=1).sum()) > MAX_COVERED * area


def _plane_area(points: np.ndarray) -> float:
    """Area of the closed polygon ``points`` (K, 3) seen along the normal of its best-fitting plane."""
    centred = points - points.mean(axis=0)
    u, v, _ = np.linalg.svd(centred)[2]
    x, y = centred @ u, centred @ v
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _inside_polygon(polygon: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Even-odd test of ``points`` (N, 2) against the closed ``polygon`` (K, 2)."""
    inside = np.zeros(len(points), bool)
    x, y = points[:, 0], points[:, 1]
    for (ax, ay), (bx, by) in zip(polygon, np.roll(polygon, -1, axis=0), strict=True):
        crosses = (ay > y) != (by > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            edge_x = ax + (y - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (x < edge_x)
    return inside
