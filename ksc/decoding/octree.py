"""Coarse-to-fine search for the blocks of grid nodes the surface may cross.

The grid has ``R`` nodes per axis, spacing ``h``. Its nodes are cut into leaf
blocks of ``leaf``^3 (the last block of an axis may be thinner). Blocks of
``leaf * 2^l`` nodes form level ``l`` of an octree. Starting from a few
coarse blocks, the network is evaluated at each block's centre; a block whose
value ``f`` satisfies ``|f| > margin * (r + h)`` (``r`` its half-diagonal)
cannot hold a zero crossing, nor share one with a neighbouring node, as long
as the field changes by at most ``margin`` per unit length. Such a block is
settled: its nodes all take ``f``, which has the right sign. The other blocks
split into their 8 children, down to the leaves, which become *active*: all
their nodes are evaluated. The network only approximates a distance, but the
band's growth below mends where that bet fails, so the margin is 1: on the 24
default files at 192^3 it evaluates 0.52x the nodes a margin of 2 did, for the
same meshes, the dense grid's.

A margin is a bet on the network's slope, and on thin or poorly fitted shapes
it loses now and then: the surface runs to the edge of an active leaf where
the settled neighbour's painted value has the other sign, and marching cubes
would place vertices from painted values. So the band grows until no node of
an active leaf disagrees in sign with a settled leaf beside it (nor two
settled neighbours with each other): every grid edge the surface crosses then
joins two evaluated nodes, and the mesh is the one dense evaluation gives,
unless a whole piece of surface hides inside settled blocks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ksc.decoding.inference import grid_axis, node_values, point_values

LEAF = 4  # nodes per axis of a leaf block (the module docstring)
MARGIN = 1.0  # the bet on the network's slope: 0.52x the nodes of a margin of 2 (the module docstring)


@dataclass
class BlockPlan:
    """Which leaf blocks need all their nodes evaluated, and the value of the others.

    Attributes
    ----------
    leaf : int
        Nodes per leaf block along each axis.
    fill : (B, B, B) float32
        Per leaf block, the centre value of the block that settled it (any
        value for active blocks), ``B = ceil(R / leaf)``.
    active : (B, B, B) bool
        Leaf blocks whose nodes must all be evaluated.
    evaluations : int
        Network calls spent: block centres and the nodes in ``values``.
    slots : (B, B, B) int32 or None
        Row of ``values`` holding each active leaf's nodes, -1 elsewhere; None
        when the active leaves are left to be evaluated during extraction.
    values : (A, leaf, leaf, leaf) float32 or None
        Node values of the evaluated leaves, NaN for nodes past the grid's end.
    """

    leaf: int
    fill: np.ndarray
    active: np.ndarray
    evaluations: int
    slots: np.ndarray | None = None
    values: np.ndarray | None = None

    @classmethod
    def everything(cls, resolution: int, leaf: int = LEAF) -> BlockPlan:
        """Every leaf active: the dense grid."""
        blocks = math.ceil(resolution / leaf)
        shape = (blocks,) * 3
        return cls(leaf=leaf, fill=np.zeros(shape, np.float32), active=np.ones(shape, bool), evaluations=0)


def plan_blocks(field, resolution: int, bound: float, leaf: int = LEAF, margin: float = MARGIN) -> BlockPlan:
    """Find the active leaf blocks of a ``resolution``^3 grid over [-bound, bound]^3, coarse to fine."""
    spacing = 2.0 * bound / (resolution - 1)
    leaves = math.ceil(resolution / leaf)
    top = max(0, math.ceil(math.log2(leaves)) - 2)  # about 4 blocks per axis at the top
    fill = np.zeros((leaves,) * 3, np.float32)
    candidates = np.stack(np.meshgrid(*(np.arange(math.ceil(leaves / 2**top)),) * 3, indexing="ij"), -1).reshape(-1, 3)
    evaluations = 0
    for level in range(top, -1, -1):
        size = leaf * 2**level  # nodes per block side at this level
        first = candidates * size
        last = np.minimum(first + size, resolution) - 1
        centres = -bound + spacing * (first + last) / 2.0
        radius = spacing * np.linalg.norm((last - first) / 2.0, axis=1)
        values = point_values(field, centres)
        evaluations += len(candidates)
        settled = np.abs(values) > margin * (radius + spacing)
        _paint(fill, candidates[settled], values[settled], 2**level)
        kept = candidates[~settled]
        if level == 0:
            active = np.zeros((leaves,) * 3, bool)
            active[tuple(kept.T)] = True
            _activate_clashing_settled(fill, active)
            plan = BlockPlan(leaf=leaf, fill=fill, active=active, evaluations=evaluations)
            _evaluate_band(plan, field, grid_axis(resolution, bound))
            return plan
        children = (kept[:, None, :] * 2 + _CHILD_OFFSETS[None]).reshape(-1, 3)
        candidates = children[np.all(children < math.ceil(leaves / 2 ** (level - 1)), axis=1)]
    raise AssertionError("unreachable: the loop returns at level 0")


_CHILD_OFFSETS = np.stack(np.meshgrid(*(np.arange(2),) * 3, indexing="ij"), -1).reshape(-1, 3)
_NEIGHBOUR_OFFSETS = np.stack(np.meshgrid(*(np.arange(-1, 2),) * 3, indexing="ij"), -1).reshape(-1, 3)
_NEIGHBOUR_OFFSETS = _NEIGHBOUR_OFFSETS[np.any(_NEIGHBOUR_OFFSETS != 0, axis=1)]  # the 26 around a leaf
GROUP_LEAVES = 4096
"""Leaves whose node coordinates are built at once (bounded memory at any resolution)."""


def _activate_clashing_settled(fill: np.ndarray, active: np.ndarray) -> None:
    """Activate settled leaves next to a settled leaf of the other sign: a surface runs between them unseen."""
    inside, settled = fill > 0, ~active
    for offset in _NEIGHBOUR_OFFSETS[:13]:  # each unordered pair of neighbours once
        here = tuple(slice(max(-o, 0), n - max(o, 0)) for o, n in zip(offset, fill.shape, strict=True))
        there = tuple(slice(max(o, 0), n - max(-o, 0)) for o, n in zip(offset, fill.shape, strict=True))
        clash = settled[here] & settled[there] & (inside[here] != inside[there])
        active[here] |= clash
        active[there] |= clash


def _evaluate_band(plan: BlockPlan, field, axis: np.ndarray) -> None:
    """Evaluate the active leaves' nodes, growing the band where the surface reaches a settled leaf."""
    slots = np.full(plan.active.shape, -1, np.int32)
    parts, count = [], 0
    leaves = np.argwhere(plan.active)
    while len(leaves):
        values = _leaf_values(field, axis, leaves, plan.leaf)
        slots[tuple(leaves.T)] = count + np.arange(len(leaves), dtype=np.int32)
        count += len(leaves)
        parts.append(values)
        plan.evaluations += int(np.count_nonzero(~np.isnan(values)))
        leaves = _disagreeing_neighbours(plan, leaves, values)
        plan.active[tuple(leaves.T)] = True
    plan.slots = slots
    plan.values = np.concatenate(parts) if parts else np.empty((0,) + (plan.leaf,) * 3, np.float32)


def _leaf_values(field, axis: np.ndarray, leaves: np.ndarray, leaf: int) -> np.ndarray:
    """Network values (L, leaf, leaf, leaf) float32 at the nodes of ``leaves`` (L, 3); NaN past the grid's end."""
    offsets = np.stack(np.meshgrid(*(np.arange(leaf),) * 3, indexing="ij"), -1).reshape(-1, 3)
    values = np.full((len(leaves), leaf**3), np.nan, np.float32)
    top = len(axis) - 1
    for start in range(0, len(leaves), GROUP_LEAVES):
        nodes = leaves[start : start + GROUP_LEAVES, None, :] * leaf + offsets[None]
        inside = np.all(nodes <= top, axis=2)
        values[start : start + GROUP_LEAVES][inside] = node_values(field, axis, nodes[inside])
    return values.reshape(len(leaves), leaf, leaf, leaf)


def _disagreeing_neighbours(plan: BlockPlan, leaves: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Settled leaves (K, 3) beside ``leaves`` whose value's sign differs from a node of ``values`` next to them."""
    found = []
    for offset in _NEIGHBOUR_OFFSETS:
        neighbours = leaves + offset
        rows = np.flatnonzero(np.all((neighbours >= 0) & (neighbours < plan.active.shape[0]), axis=1))
        rows = rows[~plan.active[tuple(neighbours[rows].T)]]
        if not len(rows):
            continue
        # The nodes of the leaf one grid step from the neighbour: its last plane towards +1, first towards -1.
        facing = tuple({1: slice(-1, None), -1: slice(0, 1), 0: slice(None)}[int(o)] for o in offset)
        near = values[rows][(slice(None), *facing)].reshape(len(rows), -1)
        fill = plan.fill[tuple(neighbours[rows].T)]
        disagree = (near * fill[:, None] <= 0).any(axis=1)  # NaN (past the grid) compares False
        found.append(neighbours[rows[disagree]])
    if not found:
        return np.empty((0, 3), np.int64)
    marked = np.zeros(plan.active.shape, bool)  # each leaf once, in C order (np.unique would import numpy.ma)
    marked[tuple(np.concatenate(found).T)] = True
    return np.argwhere(marked)


def _paint(fill: np.ndarray, blocks: np.ndarray, values: np.ndarray, span: int) -> None:
    """Give every leaf of each settled block (``span`` leaves per side) the block's value."""
    if span == 1:
        fill[tuple(blocks.T)] = values
        return
    # Coarse levels settle few blocks (each a slice of many leaves); a loop is cheaper than index arrays.
    for (i, j, k), value in zip(blocks * span, values, strict=True):
        fill[i : i + span, j : j + span, k : k + span] = value
