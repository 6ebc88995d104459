"""SOAP (Vyas et al. 2024): Adam in the eigenbases of each weight matrix's averaged gradient statistics, on the
flat parameter vector of :class:`ksc.encoding.backprop.FusedTrainer`. Chosen over Adam for the encoder: it reaches
Adam's error in ~0.4x the steps (research/design/results/optimizer.md)."""

from __future__ import annotations

import functools
import math

import torch

BETAS, EPS = (0.9, 0.999), 1e-8  # torch.optim.Adam's defaults
SHAMPOO_BETA = 0.95
"""Decay of :class:`Soap`'s averages of ``G G^T`` and ``G^T G`` (the SOAP paper's)."""
SOAP_EVERY = 10
"""Steps between two eigendecompositions of :class:`Soap`'s averages (the SOAP paper's)."""


class Soap:
    """SOAP over one flat parameter vector: Adam in the eigenbases of each weight matrix's Shampoo statistics.

    For every matrix ``G`` (m, n) among the parameters, exponential averages of ``G G^T`` (m, m) and ``G^T G``
    (n, n) are kept, and their eigenvectors ``Q_L``, ``Q_R`` (after the first step, then every
    :data:`SOAP_EVERY` steps; the first step is Adam's); Adam's moments see ``Q_L^T G Q_R`` and its update is
    rotated back. Where a layer's inputs are correlated (Fourier features, neighbouring units) this is Adam
    with the correlations taken out. Vectors (biases) and an optimizer without ``matrices`` get
    torch.optim.Adam's update (no weight decay). Vyas et al., "SOAP: Improving and Stabilizing Shampoo using
    Adam", 2024.

    Matrices of one shape lying at equal spacing (the hidden layers) are rotated and decomposed as one batch:
    a step is a few dozen small kernels whatever the depth.

    Parameters
    ----------
    parameters : (P,) tensor
        The flat parameter vector, updated in place.
    matrices : list of (offset, rows, columns)
        Where each weight matrix lies in ``parameters`` (row-major), in increasing offsets.
    """

    def __init__(self, parameters: torch.Tensor, matrices: list[tuple[int, int, int]] = ()):
        self.parameters = parameters
        buffers = ("gradient", "first", "second", "rotated", "direction")  # rotated: the gradient, then the moment
        for name in buffers:
            setattr(self, name, torch.zeros_like(parameters))
        self.steps = 0
        self.groups = []
        for offset, count, spacing, rows, columns in _batches(matrices):
            shape, strides = (count, rows, columns), (spacing, columns, 1)
            zeros = functools.partial(torch.zeros, device=parameters.device)
            group = {name: torch.as_strided(getattr(self, name), shape, strides, offset) for name in buffers}
            group.update(
                left=zeros(count, rows, rows),
                right=zeros(count, columns, columns),
                q_left=torch.eye(rows, device=parameters.device).repeat(count, 1, 1),
                q_right=torch.eye(columns, device=parameters.device).repeat(count, 1, 1),
                half=zeros(shape),
                whole=zeros(shape),
            )
            self.groups.append(group)

    def step(self, gradient: torch.Tensor, learning_rate: float) -> None:
        self.steps += 1
        beta1, beta2 = BETAS
        self.gradient.copy_(gradient)
        self.first.lerp_(gradient, 1.0 - beta1)
        self._rotate("gradient", back=False)
        self.second.mul_(beta2).addcmul_(self.rotated, self.rotated, value=1.0 - beta2)
        self._rotate("first", back=False)
        denominator = (self.second.sqrt() / math.sqrt(1.0 - beta2**self.steps)).add_(EPS)
        torch.div(self.rotated, denominator, out=self.direction)
        self._rotate("direction", back=True)
        self.parameters.add_(self.direction, alpha=-learning_rate / (1.0 - beta1**self.steps))
        # the bases come from earlier gradients only: in a basis of its own G G^T and G^T G a gradient is
        # diagonal, and Adam would scale its rounding noise off the diagonal up to whole steps
        for group in self.groups:
            g = group["gradient"]
            group["left"].baddbmm_(g, g.transpose(1, 2), beta=SHAMPOO_BETA, alpha=1.0 - SHAMPOO_BETA)
            group["right"].baddbmm_(g.transpose(1, 2), g, beta=SHAMPOO_BETA, alpha=1.0 - SHAMPOO_BETA)
            if self.steps == 1 or self.steps % SOAP_EVERY == 0:
                group["q_left"] = _eigenvectors(group["left"], group["q_left"])
                group["q_right"] = _eigenvectors(group["right"], group["q_right"])

    def _rotate(self, name: str, back: bool) -> None:
        """Every matrix ``X`` of buffer ``name`` as ``Q_L^T X Q_R`` into ``rotated`` (``back``: ``Q_L X Q_R^T``
        into ``direction``, in place); the vectors are copied (forwards) or left (back)."""
        if not back:
            self.rotated.copy_(getattr(self, name))
        for group in self.groups:
            left, right = group["q_left"], group["q_right"]
            left, right = (left, right.transpose(1, 2)) if back else (left.transpose(1, 2), right)
            torch.bmm(left, group[name], out=group["half"])
            torch.bmm(group["half"], right, out=group["whole"])
            group["direction" if back else "rotated"].copy_(group["whole"])


def _eigenvectors(statistics: torch.Tensor, previous: torch.Tensor) -> torch.Tensor:
    """Eigenvectors (B, n, n) of the symmetric ``statistics`` (B, n, n), in float64; ``previous`` where that fails.

    A unit whose gradient has vanished leaves averages that decay into float32's subnormal range, on which
    LAPACK's float32 ``syevd`` returns NaN or inaccurate vectors without raising; in float64 these are
    ordinary numbers, at ~1.25x the decomposition's time.
    """
    try:
        vectors = torch.linalg.eigh(statistics.double()).eigenvectors.to(previous.dtype)
    except torch.linalg.LinAlgError:
        return previous
    return vectors if bool(torch.isfinite(vectors).all()) else previous


def _batches(matrices: list[tuple[int, int, int]]) -> list[tuple[int, int, int, int, int]]:
    """``matrices`` (offset, rows, columns) as runs of one shape at equal spacing: (offset, count, spacing, rows, columns)."""
    runs: list[list[int]] = []
    for offset, rows, columns in matrices:
        last = runs[-1] if runs else None
        if last and (last[3], last[4]) == (rows, columns) and (last[1] == 1 or offset - last[0] == last[1] * last[2]):
            last[2] = offset - last[0] if last[1] == 1 else last[2]
            last[1] += 1
        else:
            runs.append([offset, 1, rows * columns, rows, columns])
    return [tuple(run) for run in runs]
