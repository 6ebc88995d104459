"""Surface extraction: the network on a grid, then marching cubes.

:func:`extract_mesh` is the decoder's path. It finds the blocks of nodes the
surface may cross, coarse to fine (:mod:`ksc.octree`), evaluates only their
nodes, and runs marching cubes one slab of the grid at a time, welding the
vertices the slabs share. Memory stays bounded by one slab whatever the
resolution, and the mesh is the one marching cubes gives on the dense grid.

:func:`evaluate_grid` and :func:`extract_surface` are the plain reference:
every node in one array, one marching-cubes call.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage import measure

from ksc.errors import KscError
from ksc.inference import chunk_size, evaluate_points
from ksc.model import KeySphereNet
from ksc.octree import BlockPlan, plan_blocks

DEFAULT_CHUNK = 65536
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


@torch.inference_mode()
def evaluate_grid(
    model: KeySphereNet, resolution: int, bound: float, device: torch.device, chunk: int = DEFAULT_CHUNK
) -> GridValues:
    """Signed distance at every node of a ``resolution``^3 grid spanning [-bound, bound]^3.

    Points are built and evaluated one chunk at a time, so memory stays
    bounded by ``chunk`` whatever the resolution.
    """
    axis = torch.linspace(-bound, bound, resolution, device=device)
    total = resolution**3
    values = np.empty(total, dtype=np.float32)
    plane = resolution * resolution
    for start in range(0, total, chunk):
        flat = torch.arange(start, min(start + chunk, total), device=device)
        points = torch.stack([axis[flat // plane], axis[(flat // resolution) % resolution], axis[flat % resolution]], dim=1)
        values[start : start + len(flat)] = model(points).float().cpu().numpy()
    return GridValues(values=values.reshape(resolution, resolution, resolution), evaluations=total)


def _close_at_the_box(outside: np.ndarray, spacing: float, first: bool = True, last: bool = True) -> None:
    """Make the grid's outer faces lie outside the shape, so the surface is always closed.

    A well-trained network is negative (outside) there already: the mesh fills
    [-1, 1]^3 and the box is larger. A poorly fitted one (a soup, an open
    scan, a short training) may not be, and marching cubes would leave holes
    where the shape meets the box. For a slab, ``first`` and ``last`` say
    whether its x faces are the box's.
    """
    for axis in range(3):
        for end in (0, -1):
            if axis == 0 and not (first if end == 0 else last):
                continue  # a slab's x faces inside the grid are seams, not the box
            index = [slice(None)] * 3
            index[axis] = end
            face = outside[tuple(index)]  # a view: integer indexing of one axis does not copy
            np.maximum(face, spacing / 2.0, out=face)


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
    """

    vertices: np.ndarray
    faces: np.ndarray
    evaluations: int
    active_blocks: int
    total_blocks: int


def extract_mesh(
    model: KeySphereNet,
    resolution: int,
    bound: float,
    device: torch.device,
    dense: bool = False,
    chunk: int | None = None,
    slab_nodes: int = SLAB_NODES,
) -> Extraction:
    """Zero level set of the network on a ``resolution``^3 grid over [-bound, bound]^3.

    Parameters
    ----------
    dense : bool
        Evaluate every node instead of only the blocks the surface may cross.
    chunk : int, optional
        Points per network call (default: from the free memory, see :func:`ksc.inference.chunk_size`).
    slab_nodes : int
        Most grid nodes held at once; the grid is processed in slabs along x.
    """
    chunk = chunk or chunk_size(model, device)
    plan = BlockPlan.everything(resolution) if dense else plan_blocks(model, resolution, bound, device, chunk)
    if plan.evaluations + int(plan.active.sum()) * plan.leaf**3 >= resolution**3:
        plan = BlockPlan.everything(resolution)  # a small grid or a surface everywhere: dense is cheaper
        plan.evaluations = 0
    axis = torch.linspace(-bound, bound, resolution, device=device)
    layers = plan.active.shape[0]
    per_slab = max(1, slab_nodes // (plan.leaf * resolution**2))
    spacing = 2.0 * bound / (resolution - 1)
    stitcher = _Stitcher(spacing)
    evaluations = plan.evaluations
    pending = None
    for first in range(0, layers, per_slab):
        last = min(first + per_slab, layers)
        volume, count = _slab_values(model, plan, axis, first, last, chunk)
        evaluations += count
        if pending is not None:
            pending[1][-1] = volume[0]  # the spare plane: the seam the two slabs share
            stitcher.add(*pending, final=False)
        pending = (first * plan.leaf, volume)
    stitcher.add(*pending, final=True)
    vertices, faces = stitcher.mesh()
    if not (stitcher.inside and stitcher.outside and len(faces)):
        raise KscError("the decoded field has no zero crossing: the network describes no surface")
    return Extraction(
        vertices=vertices * spacing - bound,
        faces=faces,
        evaluations=evaluations,
        active_blocks=int(plan.active.sum()),
        total_blocks=plan.active.size,
    )


def _slab_values(
    model: KeySphereNet, plan: BlockPlan, axis: torch.Tensor, first: int, last: int, chunk: int
) -> tuple[np.ndarray, int]:
    """Values of the node planes of leaf layers [first, last), plus a spare plane for the next slab's first.

    Returns the (planes, R, R) float32 array and the number of nodes evaluated.
    """
    resolution, leaf = len(axis), plan.leaf
    x0, x1 = first * leaf, min(last * leaf, resolution)
    spare = 1 if x1 < resolution else 0
    volume = np.empty((x1 - x0 + spare, resolution, resolution), dtype=np.float32)
    for layer in range(first, last):
        tile = np.repeat(np.repeat(plan.fill[layer], leaf, axis=0), leaf, axis=1)[:resolution, :resolution]
        volume[layer * leaf - x0 : min((layer + 1) * leaf, resolution) - x0] = tile
    blocks = np.argwhere(plan.active[first:last]) + np.array([first, 0, 0])
    offsets = np.stack(np.meshgrid(*(np.arange(leaf),) * 3, indexing="ij"), -1).reshape(-1, 3)
    evaluated = 0
    for start in range(0, len(blocks), max(1, chunk // leaf**3)):
        nodes = (blocks[start : start + chunk // leaf**3, None, :] * leaf + offsets[None]).reshape(-1, 3)
        nodes = nodes[np.all(nodes < resolution, axis=1)]  # the last block of an axis may be thinner
        index = torch.as_tensor(nodes, device=axis.device)
        values = evaluate_points(model, axis[index], chunk)
        volume[nodes[:, 0] - x0, nodes[:, 1], nodes[:, 2]] = values
        evaluated += len(nodes)
    return volume, evaluated


class _Stitcher:
    """Marching cubes slab by slab; vertices on the plane two slabs share are welded.

    A vertex on the seam comes out of both slabs' marching cubes from the same
    two node values, so its in-plane coordinates are bit-identical: they are
    matched exactly, as one 64-bit key per vertex.
    """

    def __init__(self, spacing: float):
        self.spacing = spacing  # node spacing in the normalized frame, for closing the box
        self.vertices, self.faces, self.count = [], [], 0
        self.seam_keys = np.empty(0, np.int64)
        self.seam_ids = np.empty(0, np.int64)
        self.inside = self.outside = False  # seen in the network's values, before the box is closed

    def add(self, x0: int, volume: np.ndarray, final: bool) -> None:
        self.inside |= bool(volume.max() > 0.0)
        self.outside |= bool(volume.min() < 0.0)
        outside = np.negative(volume, out=volume)  # marching cubes orients faces towards increasing values
        _close_at_the_box(outside, self.spacing, first=x0 == 0, last=final)
        if not outside.min() < 0.0 < outside.max():
            vertices, faces = np.empty((0, 3), np.float32), np.empty((0, 3), np.int64)
        else:
            vertices, faces, _, _ = measure.marching_cubes(outside, level=0.0)
        keys = np.ascontiguousarray(vertices[:, 1:3], dtype=np.float32).view(np.int64).ravel()
        ids = np.full(len(vertices), -1, np.int64)
        on_seam = np.flatnonzero(vertices[:, 0] == 0.0) if x0 > 0 else np.empty(0, np.int64)
        if len(on_seam) and len(self.seam_keys):
            order = np.argsort(self.seam_keys)
            where = np.searchsorted(self.seam_keys, keys[on_seam], sorter=order).clip(max=len(order) - 1)
            found = self.seam_keys[order[where]] == keys[on_seam]
            ids[on_seam[found]] = self.seam_ids[order[where[found]]]
        new = ids < 0
        ids[new] = self.count + np.arange(int(new.sum()))
        self.count += int(new.sum())
        fresh = vertices[new].astype(np.float64)
        fresh[:, 0] += x0
        self.vertices.append(fresh)
        self.faces.append(ids[faces])
        next_seam = np.flatnonzero(vertices[:, 0] == float(len(volume) - 1))
        self.seam_keys, self.seam_ids = keys[next_seam], ids[next_seam]

    def mesh(self) -> tuple[np.ndarray, np.ndarray]:
        """Vertices (V, 3) in grid-index units and faces (F, 3)."""
        return np.concatenate(self.vertices), np.concatenate(self.faces).astype(np.int64)


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
    vertices, faces, _, _ = measure.marching_cubes(outside, level=0.0, spacing=(spacing,) * 3)
    return vertices.astype(np.float64) - bound, faces.astype(np.int64)
