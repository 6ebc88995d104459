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
their nodes are evaluated. The network only approximates a distance, hence a
margin of 2 rather than 1; tests compare the result with dense evaluation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ksc.inference import evaluate_points
from ksc.model import KeySphereNet

LEAF = 4
MARGIN = 2.0


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
        Network calls spent on block centres.
    """

    leaf: int
    fill: np.ndarray
    active: np.ndarray
    evaluations: int

    @classmethod
    def everything(cls, resolution: int, leaf: int = LEAF) -> BlockPlan:
        """Every leaf active: the dense grid."""
        blocks = math.ceil(resolution / leaf)
        shape = (blocks,) * 3
        return cls(leaf=leaf, fill=np.zeros(shape, np.float32), active=np.ones(shape, bool), evaluations=0)


def plan_blocks(
    model: KeySphereNet,
    resolution: int,
    bound: float,
    device: torch.device,
    chunk: int,
    leaf: int = LEAF,
    margin: float = MARGIN,
) -> BlockPlan:
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
        values = evaluate_points(model, torch.as_tensor(centres, dtype=torch.float32, device=device), chunk)
        evaluations += len(candidates)
        settled = np.abs(values) > margin * (radius + spacing)
        _paint(fill, candidates[settled], values[settled], 2**level)
        kept = candidates[~settled]
        if level == 0:
            active = np.zeros((leaves,) * 3, bool)
            active[tuple(kept.T)] = True
            return BlockPlan(leaf=leaf, fill=fill, active=active, evaluations=evaluations)
        children = (kept[:, None, :] * 2 + _CHILD_OFFSETS[None]).reshape(-1, 3)
        candidates = children[np.all(children < math.ceil(leaves / 2 ** (level - 1)), axis=1)]
    raise AssertionError("unreachable: the loop returns at level 0")


_CHILD_OFFSETS = np.stack(np.meshgrid(*(np.arange(2),) * 3, indexing="ij"), -1).reshape(-1, 3)


def _paint(fill: np.ndarray, blocks: np.ndarray, values: np.ndarray, span: int) -> None:
    """Give every leaf of each settled block (``span`` leaves per side) the block's value."""
    if span == 1:
        fill[tuple(blocks.T)] = values
        return
    # Coarse levels settle few blocks (each a slice of many leaves); a loop is cheaper than index arrays.
    for (i, j, k), value in zip(blocks * span, values, strict=True):
        fill[i : i + span, j : j + span, k : k + span] = value
