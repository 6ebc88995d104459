"""The sparse latent grid of the learned-prior experiment: which nodes carry a latent, and what a point reads.

A mesh in ksc's normalized frame is covered by a lattice of ``R`` cells per axis over ``[-BOUND, BOUND]^3``
(node spacing ``h = 2 * BOUND / R``). A node is *active*, and carries a latent vector, when its unsigned
distance to the surface is below ``sqrt(3) * h``: then every cell the surface passes through has all eight
corners active, and the field is evaluated only in such fully active cells. Every other cell holds no surface,
so its sign is that of its nearest node; the decoder gets an inactive node's sign from a flood fill of the
inactive nodes from the box's faces (outside) and the active nodes' sign from the field itself.

A point in a fully active cell reads the trilinear blend of its cell's eight corner latents.
"""

from __future__ import annotations

import numpy as np

BOUND = 1.05
"""Half-size of the box the lattice covers, ksc's network domain: surfaces touching [-1, 1]^3 still close."""
ACTIVE_FACTOR = float(np.sqrt(3.0))
CORNERS = np.array([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)], dtype=np.int64)
"""The eight corner offsets of a cell, ``(8, 3)``, in the order of every ``(N, 8)`` array below."""


def spacing(resolution: int) -> float:
    """Node spacing ``h`` of a lattice of ``resolution`` cells per axis."""
    return 2.0 * BOUND / resolution


def lattice_nodes(resolution: int) -> np.ndarray:
    """Node positions ``((R+1)^3, 3)`` float64, x slowest."""
    axis = -BOUND + np.arange(resolution + 1) * spacing(resolution)
    return np.stack(np.meshgrid(axis, axis, axis, indexing="ij"), axis=-1).reshape(-1, 3)


def active_mask(node_distance: np.ndarray, resolution: int) -> np.ndarray:
    """Boolean ``(R+1, R+1, R+1)``: nodes whose |signed distance| ``((R+1)^3,)`` is below ``sqrt(3) h``."""
    n = resolution + 1
    return (np.abs(node_distance) < ACTIVE_FACTOR * spacing(resolution)).reshape(n, n, n)


def full_cells(active: np.ndarray) -> np.ndarray:
    """Boolean ``(R, R, R)``: cells whose eight corners are all active."""
    out = np.ones(tuple(s - 1 for s in active.shape), dtype=bool)
    for di, dj, dk in CORNERS:
        out &= active[di : di + out.shape[0], dj : dj + out.shape[1], dk : dk + out.shape[2]]
    return out


def node_ids(active: np.ndarray) -> np.ndarray:
    """int64 array of ``active``'s shape: each active node's row in the latent table (x slowest), -1 elsewhere."""
    ids = np.full(active.shape, -1, dtype=np.int64)
    ids[active] = np.arange(int(active.sum()))
    return ids


def locate(points: np.ndarray, resolution: int, ids: np.ndarray):
    """Cell, fraction and corner rows of ``points`` ``(N, 3)``.

    Returns
    -------
    cells : (N, 3) int64
    fractions : (N, 3) float32
        Position inside the cell, in [0, 1].
    corners : (N, 8) int64
        Latent rows of the cell's corners (-1 for an inactive corner).
    """
    h = spacing(resolution)
    scaled = (np.asarray(points, dtype=np.float64) + BOUND) / h
    cells = np.clip(np.floor(scaled).astype(np.int64), 0, resolution - 1)
    fractions = (scaled - cells).astype(np.float32)
    corner_nodes = cells[:, None, :] + CORNERS[None]
    corners = ids[corner_nodes[..., 0], corner_nodes[..., 1], corner_nodes[..., 2]]
    return cells, fractions, corners


def trilinear_weights(fractions: np.ndarray) -> np.ndarray:
    """Weights ``(N, 8)`` of the eight corners for fractions ``(N, 3)`` (numpy or torch)."""
    parts = []
    for di, dj, dk in CORNERS:
        wx = fractions[:, 0] if di else 1 - fractions[:, 0]
        wy = fractions[:, 1] if dj else 1 - fractions[:, 1]
        wz = fractions[:, 2] if dk else 1 - fractions[:, 2]
        parts.append(wx * wy * wz)
    stack = np.stack if isinstance(fractions, np.ndarray) else _torch_stack
    return stack(parts, 1)


def _torch_stack(parts, dim):
    import torch

    return torch.stack(parts, dim)


def outside_by_flood_fill(active: np.ndarray) -> np.ndarray:
    """Boolean mask of the inactive nodes connected (6-neighbours, through inactive nodes) to the box's faces."""
    from scipy import ndimage

    labels, _ = ndimage.label(~active)
    border = np.unique(
        np.concatenate(
            [
                labels[0].ravel(),
                labels[-1].ravel(),
                labels[:, 0].ravel(),
                labels[:, -1].ravel(),
                labels[:, :, 0].ravel(),
                labels[:, :, -1].ravel(),
            ]
        )
    )
    border = border[border > 0]
    return np.isin(labels, border)


def sphere_bound(points: np.ndarray, spheres: np.ndarray) -> np.ndarray:
    """The key spheres' bound on the signed distance (positive inside), the paper's eq. 2:
    ``max_j (r_j - |x - c_j|)``, ``(N,)`` float32 for points ``(N, 3)`` and spheres ``(M, 4)``."""
    out = np.full(len(points), -np.inf, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    for start in range(0, len(points), 65536):
        chunk = points[start : start + 65536]
        d = np.linalg.norm(chunk[:, None, :] - spheres[None, :, :3], axis=2)
        out[start : start + 65536] = (spheres[None, :, 3] - d).max(1)
    return out.astype(np.float32)
