"""Key sphere extraction.

Algorithm (after the paper's rule: large radius first, spread apart)
-------------------------------------------------------------------
1. Candidates are the nodes of a regular grid over [-1, 1]^3 (64^3, refined
   to 128^3 when the shape is too thin to hold enough nodes) whose signed
   distance ``r(c)`` is positive: each is the centre of a sphere of radius
   ``r(c)`` that touches the surface and lies inside the shape.
2. Every candidate starts with score ``s(c) = r(c)``.
3. Repeat M times: take the candidate with the largest score as the next key
   sphere ``(c_j, r_j)``, then lower every score to
   ``s(c) = min(s(c), |c - c_j| - r_j)``, the distance by which ``c`` lies
   outside the chosen sphere. Candidates inside a chosen sphere drop to a
   negative score and are never picked.

The score is at most the candidate's own radius (large spheres first) and at
most its distance to every sphere already chosen (spread apart), so spheres
fill the thick parts first and then move into thinner limbs instead of piling
up where the shape is thickest. It stops early when no candidate lies outside
the chosen spheres, so a shape may get fewer than M spheres.

The candidates' radii are computed coarse to fine when the surface is closed
(:attr:`ksc.encoding.sampling.SignedDistance.closed`), the same values at a fraction
of the queries: from an 8^3 grid up, each node's children lie ``delta`` from
it, and a node ``|d|`` from the surface has the sign of its parent wherever
``|d_parent| > delta`` (no face in that ball, and a closed surface's winding
number only changes across a face). Those children get no winding number;
the outside ones no distance either (``|d_parent| - delta`` bounds theirs for
the next level). Only nodes near the surface get a full signed query, the
inside ones an exact distance. On thin Thingi parts this is most of the key
spheres' time (docs/method.md). Open surfaces keep the dense grid: their
winding number varies smoothly off the surface and may cross 1/2 anywhere.

Centres are grid nodes, ``first + i * spacing`` along each axis
(:func:`grid_lattice`), so the file stores each coordinate exactly as a node
index (6 or 7 bits) instead of a 12-bit fraction of [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ksc.encoding.sampling import ShellDistance, SignedDistance
from ksc.errors import KscInputError


class NoVolumeError(KscInputError):
    """No node of the finest candidate grid lies inside the mesh: it is a sheet (``ksc.mesh.sheets``)."""


GRID_SIZES = (64, 128)
COARSEST = 8
"""Nodes per axis of the first, dense level of the coarse-to-fine search (a divisor of the grid sizes)."""
BOUND_SLACK = 1e-6
"""Distances are float32: a parent's sign is passed on only where its distance beats the offset by this much."""


def grid_lattice(size: int) -> tuple[float, float]:
    """``(first, spacing)`` of a candidate grid of ``size`` nodes per axis: node ``i`` lies at
    ``first + i * spacing``, the cell centres of ``size`` equal cells over [-1, 1]."""
    return -1.0 + 1.0 / size, 2.0 / size


@dataclass(frozen=True)
class KeySpheres:
    """Chosen key spheres and the candidate grid their centres are nodes of.

    Attributes
    ----------
    spheres : (M', 4) float64
        Rows ``(x, y, z, r)``, largest score first; ``M' <= count``.
    grid_size : int
        Nodes per axis of the candidate grid (one of :data:`GRID_SIZES`).
    """

    spheres: np.ndarray
    grid_size: int


def extract_key_spheres(signed_distance: SignedDistance | ShellDistance, count: int) -> KeySpheres:
    """Pick up to ``count`` key spheres inside the shape.

    Parameters
    ----------
    signed_distance : SignedDistance or ShellDistance
        Distance oracle of the normalized mesh (positive inside).
    count : int
        Number of spheres wanted (M).

    Returns
    -------
    KeySpheres
        The spheres and the size of the grid their centres were taken from.
    """
    centres = radii = np.empty((0,))
    levels = _coarse_to_fine(signed_distance) if signed_distance.closed else _dense(signed_distance)
    for size, radii in levels:
        grid = _grid_nodes(size).reshape(-1, 3)
        inside = radii > 0.0
        centres, radii = grid[inside], radii[inside]
        if len(radii) >= 8 * count:
            break
    if len(radii) == 0:
        raise NoVolumeError("mesh encloses no volume: no point lies inside it (open surface or flat?)")

    score = radii.copy()
    chosen = []
    for _ in range(count):
        best = int(np.argmax(score))
        if score[best] <= 0.0:
            break
        chosen.append(best)
        gap = np.linalg.norm(centres - centres[best], axis=1) - radii[best]
        np.minimum(score, gap, out=score)
    return KeySpheres(np.column_stack([centres[chosen], radii[chosen]]), size)


def _grid_nodes(size: int) -> np.ndarray:
    """Node positions (size, size, size, 3) float64 of the candidate grid of ``size`` nodes per axis."""
    first, spacing = grid_lattice(size)
    axis = first + np.arange(size) * spacing
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1)


def _dense(signed_distance: SignedDistance | ShellDistance):
    """``(size, radii)`` for each of :data:`GRID_SIZES`: the signed distance (size^3,) float64 at every node."""
    for size in GRID_SIZES:
        yield size, signed_distance(_grid_nodes(size).reshape(-1, 3)).astype(np.float64)


def _coarse_to_fine(signed_distance: SignedDistance | ShellDistance):
    """``(size, radii)`` for each of :data:`GRID_SIZES`, as :func:`_dense` gives them at the inside nodes
    (the exact distance, > 0) but negative anywhere else; only for a closed surface.

    Each level keeps a signed lower bound per node: its sign is the node's, its magnitude at most the
    node's distance (exact where computed).
    """
    size = COARSEST
    bound = signed_distance(_grid_nodes(size).reshape(-1, 3)).astype(np.float64).reshape((size,) * 3)
    while size < GRID_SIZES[-1]:
        offset = np.sqrt(3.0) / (2.0 * size)  # a node's distance to each of its 8 children (cells of 2 / size)
        size *= 2
        parent = bound.repeat(2, axis=0).repeat(2, axis=1).repeat(2, axis=2).reshape(-1)
        nodes = _grid_nodes(size).reshape(-1, 3)
        inherited = np.abs(parent) - offset
        known = inherited > BOUND_SLACK
        bound = np.where(known, np.sign(parent) * inherited, 0.0)
        near = np.flatnonzero(~known)
        bound[near] = signed_distance(nodes[near])
        inside = np.flatnonzero(known & (parent > 0.0))
        bound[inside] = signed_distance.unsigned(nodes[inside])
        if size in GRID_SIZES:
            yield size, np.where(bound > 0.0, bound, -1.0)
        bound = bound.reshape((size,) * 3)
