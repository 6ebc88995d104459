"""Surface extraction: the network on a grid, then marching cubes."""

from __future__ import annotations

import numpy as np
import torch
from skimage import measure

from ksc.errors import KscError
from ksc.model import KeySphereNet

DEFAULT_CHUNK = 65536


@torch.inference_mode()
def evaluate_grid(
    model: KeySphereNet, resolution: int, bound: float, device: torch.device, chunk: int = DEFAULT_CHUNK
) -> np.ndarray:
    """Signed distance on a ``resolution``^3 grid spanning [-bound, bound]^3.

    Points are built and evaluated one chunk at a time, so memory stays
    bounded by ``chunk`` whatever the resolution.

    Returns
    -------
    (R, R, R) float32
        Values indexed ``[i, j, k]`` for x, y, z.
    """
    axis = torch.linspace(-bound, bound, resolution, device=device)
    total = resolution**3
    values = np.empty(total, dtype=np.float32)
    plane = resolution * resolution
    for start in range(0, total, chunk):
        flat = torch.arange(start, min(start + chunk, total), device=device)
        points = torch.stack([axis[flat // plane], axis[(flat // resolution) % resolution], axis[flat % resolution]], dim=1)
        values[start : start + len(flat)] = model(points).float().cpu().numpy()
    return values.reshape(resolution, resolution, resolution)


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
    vertices, faces, _, _ = measure.marching_cubes(-values, level=0.0, spacing=(spacing,) * 3)
    return vertices.astype(np.float64) - bound, faces.astype(np.int64)
