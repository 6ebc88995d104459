"""The key-sphere SDF network (paper section 2.3, eq. 3 and 4).

A query point ``x_i`` gets a feature ``y_i = sum_j w_ij z_j`` from the M key
spheres, with the paper's weights ``w_ij = d_ij / sum_j d_ij`` and
``d_ij = 2 r_j + |x_i - c_j|``. The sphere features ``z_j`` come from one of
two branches:

* ``direct`` (DPFE): ``z_j = act(A s_j + a)``, one 4 -> E layer over the
  sphere ``s_j = (c_j, r_j)``. The activation matters: without it ``y_i``
  would be an affine function of the weighted mean sphere, only 4 degrees of
  freedom, whatever the feature width.
* ``latent`` (LPFE): ``z_j`` is a trained E-vector stored per sphere.

``[x_i, f(x_i), y_i]`` (3 + 6F + E values) then runs through K hidden layers of
Q units and a linear output that predicts the signed distance; ``f`` are F
octaves of Fourier features, ``sin`` then ``cos`` of ``2**k * pi * x_i`` for
k < F (F = 0 is the paper's network), which hand a small MLP the high
frequencies it learns slowly. Why E = 8, F = 6, 5 x 34 and SiLU: docs/method.md.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ksc.errors import KscFormatError, KscInputError
from ksc.format.layout import hidden_layer_sizes, tensor_layout
from ksc.models.config import ModelConfig

"""``d`` is at least twice the radius; this bound only matters for a sphere of radius ~0."""
ACTIVATIONS = {"silu": nn.functional.silu, "relu": torch.relu}  # keyed by config.ACTIVATION_NAMES


def stored_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Shape of every tensor a file stores for ``config``, by name, in file order (the format's own table)."""
    return dict(tensor_layout(config))


class KeySphereNet(nn.Module):
    """SDF network conditioned on key spheres.

    Parameters
    ----------
    config : ModelConfig
        Branch and sizes. ``config.spheres`` must equal ``len(spheres)``.
    spheres : (M, 4) tensor
        Key spheres ``(x, y, z, r)`` in the normalized frame; stored, not trained.
    """

    def __init__(self, config: ModelConfig, spheres: torch.Tensor):
        super().__init__()
        if tuple(spheres.shape) != (config.spheres, 4):
            raise KscInputError(f"spheres must have shape ({config.spheres}, 4), got {tuple(spheres.shape)}")
        if config.weighting != "paper":
            raise KscInputError(
                f"weighting {config.weighting!r} is only read, from old files (the decoders keep it);"
                " a network is fitted with 'paper'"
            )
        self.config = config
        self.register_buffer("spheres", spheres.detach().to(torch.float32).clone())
        if config.features == "direct":
            self.sphere_layer = nn.Linear(4, config.feature_dim)
        else:
            self.latents = nn.Parameter(torch.randn(config.spheres, config.feature_dim) * 0.1)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in hidden_layer_sizes(config))
        self.output = nn.Linear(config.width, 1)

    def sphere_features(self) -> torch.Tensor:
        """Per-sphere features z (M, E)."""
        if self.config.features == "direct":
            return torch.relu(self.sphere_layer(self.spheres))
        return self.latents

    def sphere_affinities(self, points: torch.Tensor) -> torch.Tensor:
        """Unnormalized weights (N, M) of the spheres for ``points`` (N, 3).

        ``paper`` weighting: ``d`` (eq. 3 as printed: farther spheres weigh more). The nearer-is-heavier
        weightings that old files may hold are read by the decoders only (``ksc.models.runtime``; format/HISTORY.md).
        """
        centres, radii = self.spheres[:, :3], self.spheres[:, 3]
        return self.affinities_of(torch.cdist(points, centres) + 2.0 * radii)

    def affinities_of(self, d: torch.Tensor) -> torch.Tensor:
        """The unnormalized weights of :meth:`sphere_affinities` from ``d = 2 r_j + |x_i - c_j|`` (N, M)."""
        return d

    def sphere_weights(self, points: torch.Tensor) -> torch.Tensor:
        """Weights (N, M) of the spheres for ``points`` (N, 3); each row sums to 1."""
        affinities = self.sphere_affinities(points)
        return affinities / affinities.sum(dim=1, keepdim=True)

    def point_features(self, points: torch.Tensor) -> torch.Tensor:
        """The weighted sum of sphere features ``y`` (N, E) at ``points`` (N, 3).

        Computed as ``(a @ z) / sum_j a_j``, the same value as ``sphere_weights(points) @
        sphere_features()``; the division touches N x E values instead of N x M. (Training
        computes the normalized weights once per training point instead, :mod:`ksc.encoding.backprop`.)
        """
        affinities = self.sphere_affinities(points)
        return (affinities @ self.sphere_features()) / affinities.sum(dim=1, keepdim=True)

    def fourier_features(self, points: torch.Tensor) -> list[torch.Tensor]:
        """``sin`` and ``cos`` of ``2**k * pi * points`` for k < frequencies: two (N, 3) tensors per k."""
        features = []
        for k in range(self.config.frequencies):
            angle = (math.pi * 2.0**k) * points
            features += [torch.sin(angle), torch.cos(angle)]
        return features

    def network_input(self, points: torch.Tensor) -> torch.Tensor:
        """``[x, f(x), y]`` (N, 3 + 6F + E) at ``points`` (N, 3): what the first hidden layer reads."""
        return torch.cat([points, *self.fourier_features(points), self.point_features(points)], dim=1)

    def activation(self, h: torch.Tensor) -> torch.Tensor:
        """The hidden layers' activation (``config.activation``)."""
        return ACTIVATIONS[self.config.activation](h)

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        """Predicted signed distance (N,) at ``points`` (N, 3)."""
        h = self.network_input(points)
        for layer in self.hidden:
            h = self.activation(layer(h))
        return self.output(h).squeeze(1)

    def stored_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor the container stores, by stable name (spheres included)."""
        tensors = {"spheres": self.spheres}
        tensors.update({name: p for name, p in self.named_parameters()})
        return tensors

    def stored_parameter_count(self) -> int:
        """Number of stored values, spheres included (paper eq. 4)."""
        return sum(t.numel() for t in self.stored_tensors().values())

    @torch.no_grad()
    def load_stored_tensors(self, tensors: dict[str, torch.Tensor]) -> None:
        """Set every stored tensor from ``tensors``; names and shapes must match exactly."""
        expected = self.stored_tensors()
        missing, unknown = set(expected) - set(tensors), set(tensors) - set(expected)
        if missing or unknown:
            raise KscFormatError(f"tensor names do not match the model: missing {sorted(missing)}, unknown {sorted(unknown)}")
        for name, target in expected.items():
            value = torch.as_tensor(tensors[name], dtype=torch.float32)
            if value.shape != target.shape:
                raise KscFormatError(f"tensor {name!r} has shape {tuple(value.shape)}, model needs {tuple(target.shape)}")
            target.copy_(value)


def load_model(data: bytes, device: torch.device | None = None) -> KeySphereNet:
    """The torch network of ``.ksc`` bytes (the decoder itself runs :class:`ksc.models.runtime.SphereField`, in numpy)."""
    from ksc.decoding.pipeline import load_field

    decoded = load_field(data)
    tensors = decoded.container.tensor_map()
    model = KeySphereNet(decoded.config, torch.from_numpy(tensors["spheres"]))
    model.load_stored_tensors({name: torch.from_numpy(value) for name, value in tensors.items()})
    return model.eval().to(device or torch.device("cpu"))
