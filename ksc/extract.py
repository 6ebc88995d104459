"""Surface extraction: the network on a grid, then marching cubes.

Two ways to fill the grid: :func:`evaluate_grid` evaluates every node (the
reference); :func:`evaluate_narrow_band` evaluates one point per block of
8^3 nodes and every node only in blocks the surface may cross, which gives the
same marching-cubes mesh for a fraction of the network calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from skimage import measure

from ksc.errors import KscError
from ksc.model import KeySphereNet

DEFAULT_CHUNK = 65536
BLOCK = 8
LIPSCHITZ_MARGIN = 2.0


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


@torch.inference_mode()
def evaluate_narrow_band(
    model: KeySphereNet,
    resolution: int,
    bound: float,
    device: torch.device,
    block: int = BLOCK,
    margin: float = LIPSCHITZ_MARGIN,
    chunk: int = DEFAULT_CHUNK,
) -> GridValues:
    """Signed distance on the grid, exact only where the surface may pass.

    The nodes are cut into blocks of ``block``^3. The network is evaluated at
    each block's centre; a block whose centre value ``f`` satisfies
    ``|f| > margin * (r + h)`` (``r`` the block's half-diagonal, ``h`` the node
    spacing) cannot hold a zero crossing, nor share one with a neighbour, as
    long as the field changes by at most ``margin`` per unit length; its nodes
    all get ``f``. Every node of the other blocks is evaluated. Marching cubes
    then sees the same crossings as on the dense grid. The network only
    approximates a distance, hence a margin of 2 rather than 1; tests compare
    the result with :func:`evaluate_grid` on trained networks.
    """
    axis = torch.linspace(-bound, bound, resolution, device=device)
    spacing = 2.0 * bound / (resolution - 1)
    starts = np.arange(0, resolution, block)
    sizes = np.minimum(starts + block, resolution) - starts
    centres_1d = torch.as_tensor(-bound + spacing * (starts + (sizes - 1) / 2.0), dtype=torch.float32, device=device)
    half = spacing * (sizes - 1) / 2.0
    count = len(starts)

    grid = torch.stack(torch.meshgrid(centres_1d, centres_1d, centres_1d, indexing="ij"), dim=-1).reshape(-1, 3)
    coarse = np.concatenate([model(grid[i : i + chunk]).float().cpu().numpy() for i in range(0, len(grid), chunk)])
    coarse = coarse.reshape(count, count, count)
    radius = np.sqrt(half[:, None, None] ** 2 + half[None, :, None] ** 2 + half[None, None, :] ** 2)
    active = np.argwhere(np.abs(coarse) <= margin * (radius + spacing))

    planned = count**3 + len(active) * block**3
    if planned >= resolution**3:  # small grids or a surface everywhere: the band would cost more
        dense = evaluate_grid(model, resolution, bound, device, chunk)
        return GridValues(values=dense.values, evaluations=count**3 + dense.evaluations)

    values = np.repeat(np.repeat(np.repeat(coarse, sizes, axis=0), sizes, axis=1), sizes, axis=2)
    offsets = torch.stack(torch.meshgrid(*(torch.arange(block, device=device),) * 3, indexing="ij"), dim=-1).reshape(-1, 3)
    per_group = max(1, chunk // block**3)
    starts_t = torch.as_tensor(starts, device=device)
    for first in range(0, len(active), per_group):
        blocks = torch.as_tensor(active[first : first + per_group], device=device)
        nodes = (starts_t[blocks][:, None, :] + offsets[None]).reshape(-1, 3).clamp_(max=resolution - 1)
        result = model(axis[nodes]).float().cpu().numpy()
        index = nodes.cpu().numpy()
        values[index[:, 0], index[:, 1], index[:, 2]] = result
    return GridValues(values=values, evaluations=planned)


def _close_at_the_box(outside: np.ndarray, spacing: float) -> None:
    """Make the grid's outer faces lie outside the shape, so the surface is always closed.

    A well-trained network is negative (outside) there already: the mesh fills
    [-1, 1]^3 and the box is larger. A poorly fitted one (a soup, an open
    scan, a short training) may not be, and marching cubes would leave holes
    where the shape meets the box.
    """
    for axis in range(3):
        for end in (0, -1):
            index = [slice(None)] * 3
            index[axis] = end
            face = outside[tuple(index)]  # a view: integer indexing of one axis does not copy
            np.maximum(face, spacing / 2.0, out=face)


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
