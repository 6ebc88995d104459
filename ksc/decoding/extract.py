"""Surface extraction: the network on a grid, then marching cubes.

:func:`extract_mesh` is the decoder's path. It finds the blocks of nodes the
surface may cross, coarse to fine (:mod:`ksc.decoding.octree`), evaluates only their
nodes, and runs marching cubes one slab of the grid at a time, welding the
vertices the slabs share. Memory stays bounded by one slab whatever the
resolution, and the mesh is the one marching cubes gives on the dense grid.

:func:`evaluate_grid` and :func:`extract_surface` are the plain reference:
every node in one array, one marching-cubes call.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from skimage.measure import marching_cubes

from ksc.decoding.inference import grid_axis, node_values
from ksc.decoding.octree import BlockPlan, plan_blocks
from ksc.errors import KscError
from ksc.timing import timed

GROUP_NODES = 1 << 18
"""Nodes whose coordinates are built at once (the network then runs on them chunk by chunk)."""
SLAB_NODES = 32 * 1024 * 1024
"""Grid nodes per marching-cubes slab (128 MB of float32): the memory bound of extraction."""


@dataclass
class GridValues:
    """Signed distances on a grid and what they cost.

    Attributes
    ----------
    values : (R, R, R) float32
        Indexed ``[i, j, k]`` for x, y, z over [-bound, bound]^3.
    evaluations : int
        Network calls spent (points evaluated).
    """

    values: np.ndarray
    evaluations: int


def evaluate_grid(field, resolution: int, bound: float, chunk: int = GROUP_NODES) -> GridValues:
    """Signed distance of ``field`` at every node of a ``resolution``^3 grid spanning [-bound, bound]^3.

    Nodes are built and evaluated ``chunk`` at a time, so memory stays bounded
    by ``chunk`` besides the result, whatever the resolution.
    """
    axis = grid_axis(resolution, bound)
    total = resolution**3
    values = np.empty(total, dtype=np.float32)
    for start in range(0, total, chunk):
        flat = np.arange(start, min(start + chunk, total))
        nodes = np.stack(np.unravel_index(flat, (resolution,) * 3), axis=1)
        values[start : start + len(flat)] = node_values(field, axis, nodes)
    return GridValues(values=values.reshape(resolution, resolution, resolution), evaluations=total)


def _close_at_the_box(outside: np.ndarray, spacing: float, ends=((True, True),) * 3) -> None:
    """Make the grid's outer faces lie outside the shape, so the surface is always closed.

    A well-trained network is negative (outside) there already: the mesh fills
    [-1, 1]^3 and the box is larger. A poorly fitted one (a soup, an open
    scan, a short training) may not be, and marching cubes would leave holes
    where the shape meets the box. For a slab's window, ``ends[axis]`` says
    whether its low and high faces along ``axis`` are the box's.
    """
    for index in _box_faces(ends):
        face = outside[index]  # a view: integer indexing of one axis does not copy
        np.maximum(face, spacing / 2.0, out=face)


def _box_faces(ends=((True, True),) * 3):
    """Index tuples of a 3-D array's six faces; ``ends[axis]`` (low, high) leaves out faces marked False."""
    for axis in range(3):
        for side, end in enumerate((0, -1)):
            if ends[axis][side]:
                index = [slice(None)] * 3
                index[axis] = end
                yield tuple(index)


@dataclass
class Extraction:
    """A mesh from the network and what it cost.

    Attributes
    ----------
    vertices : (V, 3) float64
        In the normalized frame.
    faces : (F, 3) int64
        Outward-facing triangles.
    evaluations : int
        Network calls (points evaluated), block centres included.
    active_blocks, total_blocks : int
        Leaf blocks whose nodes were all evaluated, out of all leaf blocks.
    spacing : float
        Distance between grid nodes in the normalized frame.
    timings : dict of str to float
        Seconds of the band's search and evaluation (``network``) and of the slabs (``marching cubes``).
    """

    vertices: np.ndarray
    faces: np.ndarray
    evaluations: int
    active_blocks: int
    total_blocks: int
    spacing: float
    timings: dict[str, float] = dataclasses.field(default_factory=dict)


def extract_mesh(field, resolution: int, bound: float, dense: bool = False, slab_nodes: int = SLAB_NODES) -> Extraction:
    """Zero level set of ``field`` (see :mod:`ksc.decoding.inference`) on a ``resolution``^3 grid over [-bound, bound]^3.

    Parameters
    ----------
    dense : bool
        Evaluate every node instead of only the blocks the surface may cross.
    slab_nodes : int
        Most grid nodes held at once; the grid is processed in slabs along x.
    """
    timings: dict[str, float] = {}
    with timed(timings, "network"):
        plan = BlockPlan.everything(resolution) if dense else plan_blocks(field, resolution, bound)
    axis = grid_axis(resolution, bound)
    layers = plan.active.shape[0]
    per_slab = max(1, slab_nodes // (plan.leaf * resolution**2))
    spacing = 2.0 * bound / (resolution - 1)
    needed = plan.active | _inside_at_the_box(plan)
    stitcher = _Stitcher(spacing, resolution)
    evaluations = plan.evaluations
    first, final = 0, False
    while not final:
        last = min(first + per_slab, layers - 1)  # the slab ends on the first plane of layer `last`
        final = last == layers - 1  # ... or, for the final slab, on the grid's last plane
        window = _window(needed[first : last + 1], plan.leaf, resolution)
        if window is not None:  # else no surface and no box face to close in this slab
            with timed(timings, "marching cubes"):  # the dense path's network calls fall here too
                volume, count = _slab_values(field, plan, axis, first, last, window)
                evaluations += count
                stitcher.add(volume, (first * plan.leaf, window[0], window[2]))
        first = last
    vertices, faces = stitcher.mesh()
    settled = plan.fill[~plan.active]
    inside = stitcher.inside or bool((settled > 0).any())
    outside = stitcher.outside or bool((settled < 0).any())
    if not (inside and outside and len(faces)):
        raise KscError("the decoded field has no zero crossing: the network describes no surface")
    return Extraction(
        vertices=vertices * spacing - bound,
        faces=faces,
        evaluations=evaluations,
        active_blocks=int(plan.active.sum()),
        total_blocks=plan.active.size,
        spacing=spacing,
        timings=timings,
    )


def _inside_at_the_box(plan: BlockPlan) -> np.ndarray:
    """Settled leaves on the box's faces whose value is inside: closing the box makes faces there."""
    border = np.zeros(plan.active.shape, bool)
    for index in _box_faces():
        border[index] = True
    return border & ~plan.active & (plan.fill > 0)


def _window(needed: np.ndarray, leaf: int, resolution: int) -> tuple[int, int, int, int] | None:
    """Node range ``(y0, y1, z0, z1)`` (inclusive) around the leaves a slab needs, one leaf of margin; None if none.

    Outside it every node is settled with the sign of its neighbours, so no
    surface crosses its border and marching cubes may ignore the rest.
    """
    columns = needed.any(axis=0)
    if not columns.any():
        return None
    rows, cols = np.flatnonzero(columns.any(axis=1)), np.flatnonzero(columns.any(axis=0))
    top = resolution - 1
    return (
        max(rows[0] - 1, 0) * leaf,
        min((rows[-1] + 2) * leaf, top),
        max(cols[0] - 1, 0) * leaf,
        min((cols[-1] + 2) * leaf, top),
    )


def _slab_values(
    field, plan: BlockPlan, axis: np.ndarray, first: int, last: int, window: tuple[int, int, int, int]
) -> tuple[np.ndarray, int]:
    """Values of the nodes from the first plane of leaf layer ``first`` to the first plane of ``last``, in ``window``.

    The last plane is the seam with the next slab (or the grid's last plane).
    Returns the (planes, Y, Z) float32 array and the number of nodes evaluated.
    """
    resolution, leaf = len(axis), plan.leaf
    y0, y1, z0, z1 = window
    x0, x1 = first * leaf, min(last * leaf, resolution - 1)
    if last == plan.active.shape[0] - 1:
        x1 = resolution - 1  # the final slab runs to the grid's end
        last += 1
    volume = np.empty((x1 - x0 + 1, y1 - y0 + 1, z1 - z0 + 1), dtype=np.float32)
    for layer in range(first, min(last + 1, plan.active.shape[0])):
        leaves = plan.fill[layer, y0 // leaf : y1 // leaf + 1, z0 // leaf : z1 // leaf + 1]
        tile = np.repeat(np.repeat(leaves, leaf, axis=0), leaf, axis=1)
        tile = tile[y0 % leaf : y0 % leaf + y1 - y0 + 1, z0 % leaf : z0 % leaf + z1 - z0 + 1]
        start, stop = max(layer * leaf, x0), min((layer + 1) * leaf - 1, x1)
        if start <= stop:
            volume[start - x0 : stop - x0 + 1] = tile
    blocks = np.argwhere(plan.active[first : last + 1]) + np.array([first, 0, 0])
    corner, size = np.array([x0, y0, z0]), np.array(volume.shape)
    evaluated = 0
    per_group = max(1, GROUP_NODES // leaf**3)
    for start in range(0, len(blocks), per_group):
        group = blocks[start : start + per_group]
        # Per axis, each leaf's node positions in the slab (g, leaf); a node is the slab's when all three are.
        place = [group[:, [a]] * leaf + np.arange(leaf) - corner[a] for a in range(3)]
        inside = [(q >= 0) & (q < n) for q, n in zip(place, size, strict=True)]
        mine = inside[0][:, :, None, None] & inside[1][:, None, :, None] & inside[2][:, None, None, :]
        flat = (place[0][:, :, None, None] * size[1] + place[1][:, None, :, None]) * size[2] + place[2][:, None, None, :]
        if plan.values is not None:  # evaluated while planning
            values = plan.values[plan.slots[tuple(group.T)]][mine]
        else:
            nodes = np.stack(np.unravel_index(flat[mine], volume.shape), axis=1) + corner
            values = node_values(field, axis, nodes)
            evaluated += len(nodes)
        volume.reshape(-1)[flat[mine]] = values
    return volume, evaluated


class _Stitcher:
    """Marching cubes slab by slab; vertices on the plane two slabs share are welded.

    A vertex on the seam comes out of both slabs' marching cubes from the same
    two node values, but each slab counts its coordinates from its own window,
    so float32 rounding may differ in the last bit: seam vertices are matched
    to the nearest one of the previous slab within ``WELD_TOLERANCE`` nodes
    (two distinct seam vertices lie on distinct grid edges, far further apart).
    """

    WELD_TOLERANCE = 1e-3

    def __init__(self, spacing: float, resolution: int):
        self.spacing = spacing  # node spacing in the normalized frame, for closing the box
        self.top = resolution - 1
        self.vertices, self.faces, self.count = [], [], 0
        self.seam_x, self.seam_points, self.seam_ids = -1, np.empty((0, 2)), np.empty(0, np.int64)
        self.inside = self.outside = False  # seen in the network's values, before the box is closed

    def add(self, volume: np.ndarray, origin: tuple[int, int, int]) -> None:
        """Mesh the slab ``volume`` whose node [0, 0, 0] is grid node ``origin``."""
        self.inside |= bool(volume.max() > 0.0)
        self.outside |= bool(volume.min() < 0.0)
        outside = np.negative(volume, out=volume)  # marching cubes orients faces towards increasing values
        ends = [(o == 0, o + n - 1 == self.top) for o, n in zip(origin, volume.shape, strict=True)]
        _close_at_the_box(outside, self.spacing, ends)
        if not outside.min() < 0.0 < outside.max():
            return
        vertices, faces, _, _ = marching_cubes(outside, level=0.0, mask=_crossed_cells(outside))
        vertices = vertices.astype(np.float64) + np.array(origin, dtype=np.float64)
        ids = np.full(len(vertices), -1, np.int64)
        on_seam = np.flatnonzero(vertices[:, 0] == self.seam_x)
        if len(on_seam) and len(self.seam_ids):
            distance, nearest = _nearest_within(self.seam_points, vertices[on_seam, 1:], self.WELD_TOLERANCE)
            found = distance <= self.WELD_TOLERANCE
            ids[on_seam[found]] = self.seam_ids[nearest[found]]
        new = ids < 0
        ids[new] = self.count + np.arange(int(new.sum()))
        self.count += int(new.sum())
        self.vertices.append(vertices[new])
        self.faces.append(ids[faces])
        self.seam_x = origin[0] + volume.shape[0] - 1
        next_seam = np.flatnonzero(vertices[:, 0] == self.seam_x)
        self.seam_points, self.seam_ids = vertices[next_seam, 1:], ids[next_seam]

    def mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """Vertices (V, 3) in grid-index units and faces (F, 3)."""
        if not self.faces:
            return np.empty((0, 3)), np.empty((0, 3), np.int64)
        return np.concatenate(self.vertices), np.concatenate(self.faces).astype(np.int64)


def _crossed_cells(volume: np.ndarray) -> np.ndarray:
    """Marching cubes' ``mask`` for ``volume``: the cells whose 8 corners are not all on one side of 0.

    skimage reads a cell's entry at its highest corner (``[1:, 1:, 1:]`` here; a test checks that the masked
    mesh is the unmasked one). The other cells make no faces and are skipped: about 0.4x the time of marching
    cubes on a band-sized surface. Per node, bit 0 says > 0 and bit 1 says < 0; AND over a cell's corners
    leaves a bit only where all agree. Four volume-sized byte arrays in all (fresh memory is slow to touch in a
    new process).
    """
    sides = np.greater(volume, 0.0).view(np.uint8)
    scratch = np.less(volume, 0.0).view(np.uint8)
    sides |= np.left_shift(scratch, 1, out=scratch)
    other = np.empty(volume.size, np.uint8)
    buffers = (scratch.reshape(-1), other)
    shape = list(volume.shape)
    for axis in range(3):  # a corner-wise AND over the cell, one axis at a time, between two buffers
        low = [slice(None)] * 3
        high = [slice(None)] * 3
        low[axis], high[axis] = slice(0, -1), slice(1, None)
        shape[axis] -= 1
        out = buffers[axis % 2][: math.prod(shape)].reshape(shape)
        sides = np.bitwise_and(sides[tuple(low)], sides[tuple(high)], out=out)
    mask = np.zeros(volume.shape, bool)
    np.equal(sides, 0, out=mask[1:, 1:, 1:])
    return mask


def _nearest_within(reference: np.ndarray, queries: np.ndarray, tolerance: float) -> tuple[np.ndarray, np.ndarray]:
    """For each of ``queries`` (Q, 2), the distance to and index of the nearest point of ``reference`` (P, 2)
    among those within ``tolerance`` (distance inf and index -1 where there is none).

    A hash grid of cell ``tolerance``: a point within it lies in the query's cell
    or one of the 8 around it. (Welding needs no more, and numpy alone keeps
    scipy's import out of the decoder.)
    """
    best = np.full(len(queries), np.inf)
    index = np.full(len(queries), -1, np.int64)
    if not len(reference) or not len(queries):
        return best, index
    cells = np.floor(reference / tolerance).astype(np.int64)
    keys = cells[:, 0] * (1 << 31) + cells[:, 1]
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    query_cells = np.floor(queries / tolerance).astype(np.int64)
    for dy in (-1, 0, 1):
        for dz in (-1, 0, 1):
            wanted = (query_cells[:, 0] + dy) * (1 << 31) + query_cells[:, 1] + dz
            low = np.searchsorted(sorted_keys, wanted, side="left")
            high = np.searchsorted(sorted_keys, wanted, side="right")
            for extra in range(int((high - low).max(initial=0))):  # cells hold one point but for near-coincident ones
                has = low + extra < high
                candidate = order[np.minimum(low + extra, len(order) - 1)]
                distance = np.where(has, np.linalg.norm(reference[candidate] - queries, axis=1), np.inf)
                closer = distance < best
                best[closer], index[closer] = distance[closer], candidate[closer]
    return best, index


def extract_surface(values: np.ndarray, bound: float) -> tuple[np.ndarray, np.ndarray]:
    """Zero level set of a grid of signed distances.

    Parameters
    ----------
    values : (R, R, R) float32
        Signed distance, positive inside, spanning [-bound, bound]^3.
    bound : float
        Half-size of the grid's box.

    Returns
    -------
    vertices : (V, 3) float64 in the normalized frame
    faces : (F, 3) int64, outward-facing
    """
    if not (values.min() < 0.0 < values.max()):
        raise KscError("the decoded field has no zero crossing: the network describes no surface")
    resolution = values.shape[0]
    spacing = 2.0 * bound / (resolution - 1)
    # marching_cubes orients faces towards increasing values; ours grow inwards, so negate.
    outside = -values
    _close_at_the_box(outside, spacing)
    vertices, faces, _, _ = marching_cubes(outside, level=0.0, spacing=(spacing,) * 3)
    return vertices.astype(np.float64) - bound, faces.astype(np.int64)
