"""The shared decoder of the learned-prior experiment (torch).

A point ``x`` in a fully active cell of a lattice with spacing ``h`` reads

    z(x) = sum_k w_k(u) L[corner_k]          (trilinear blend of the cell's 8 corner latents, C channels)
    d(x) / h = MLP([z(x), u - 1/2, clamp(b(x) / h, -4, 4) / 4])

where ``u`` is its position in the cell and ``b(x) = max_j (r_j - |x - c_j|)`` the key spheres' bound (eq. 2 of
the paper). Everything is in units of the cell, so one decoder serves every lattice resolution. Targets are the
signed distance (positive inside) over ``h``, clipped to [-2, 2].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from research.prior import grid

TARGET_CLIP = 2.0
BOUND_CLIP = 4.0


class PriorDecoder(nn.Module):
    def __init__(self, channels: int = 8, hidden: int = 96, layers: int = 3):
        super().__init__()
        self.config = {"channels": channels, "hidden": hidden, "layers": layers}
        sizes = [channels + 4] + [hidden] * layers
        blocks: list[nn.Module] = []
        for a, b in zip(sizes[:-1], sizes[1:], strict=False):
            blocks += [nn.Linear(a, b), nn.SiLU()]
        blocks.append(nn.Linear(hidden, 1))
        self.net = nn.Sequential(*blocks)

    def forward(self, latent: torch.Tensor, fractions: torch.Tensor, bound_h: torch.Tensor) -> torch.Tensor:
        """Signed distance over h, ``(N,)``, for blended latents ``(N, C)``, fractions ``(N, 3)``, bound / h ``(N,)``."""
        features = torch.cat([latent, fractions - 0.5, bound_h.clamp(-BOUND_CLIP, BOUND_CLIP)[:, None] / BOUND_CLIP], 1)
        return self.net(features)[:, 0]


def cell_units(samples: dict) -> tuple[np.ndarray, np.ndarray]:
    """A shape's key-sphere bound over h ``(N,)`` and target, the signed distance over h clipped to
    +-TARGET_CLIP ``(N,)``, both float32, from its arrays (``research.prior.data.shape_samples``)."""
    h = grid.spacing(int(samples["resolution"]))
    bound = (samples["bound"] / h).astype(np.float32)
    return bound, np.clip(samples["sdf"] / h, -TARGET_CLIP, TARGET_CLIP).astype(np.float32)


def blend(table: torch.Tensor, corners: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    """Trilinear blend ``(N, C)`` of latent rows ``table[corners]`` (corners ``(N, 8)``)."""
    weights = grid.trilinear_weights(fractions)
    return (weights[:, :, None] * table[corners]).sum(1)


def save_decoder(decoder: PriorDecoder, path, **extra) -> str:
    """Write the decoder's weights and config as ``.npz``; return its sha256."""
    import hashlib
    import io
    import json

    arrays = {name: p.detach().cpu().numpy().astype(np.float32) for name, p in decoder.state_dict().items()}
    buffer = io.BytesIO()
    np.savez(buffer, config=np.frombuffer(json.dumps({**decoder.config, **extra}).encode(), dtype=np.uint8), **arrays)
    data = buffer.getvalue()
    with open(path, "wb") as out:
        out.write(data)
    return hashlib.sha256(data).hexdigest()


def load_decoder(path) -> PriorDecoder:
    import json

    data = np.load(path)
    config = json.loads(bytes(data["config"]).decode())
    decoder = PriorDecoder(config["channels"], config["hidden"], config["layers"])
    decoder.load_state_dict({k: torch.from_numpy(data[k]) for k in data.files if k != "config"})
    return decoder
