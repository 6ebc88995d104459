"""Per-tensor quantization steps from measured sensitivity (bit allocation between tensors).

Each stored tensor is rounded to multiples of one step (``uniform_ac``), by
default its RMS step at the file's bits (``ksc.format.codecs.rms_step``). With
an entropy coder a tensor of ``n`` values whose step is ``x`` times that costs
about ``n log2(1/x)`` bits more or less, while its rounding noise adds about
``s x**2`` to the loss, where ``s`` is the tensor's sensitivity: what noise of
one step adds. Minimizing the total added loss at a fixed total of bits gives
every tensor the same marginal return, ``x**2`` proportional to ``n / s``
(reverse water-filling): a tensor whose weights matter more each gets a finer
step, one that hardly matters a coarser one, and the file keeps its size.

The sensitivities are measured, not modelled: the trained network's loss on a
fixed subset of its training points, with uniform noise of twice the RMS step
added to one tensor at a time, in antithetic pairs (``+e`` and ``-e``) so that
the first-order term, whose sign is random, cancels and leaves the curvature.
Over the 15 meshes of ../shared/meshes, at the default preset, this gave
0.967x (median) the Chamfer-L1 of equal steps in the same bytes (docs/method.md, "Quantize").
A reader needs nothing new: it reads each tensor's stored step.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.func import functional_call

from ksc.encoding.config import TrainConfig
from ksc.encoding.quantize import rms_step_of
from ksc.encoding.threads import torch_threads
from ksc.encoding.train import sdf_loss
from ksc.models.network import KeySphereNet

if TYPE_CHECKING:
    from ksc.encoding.sampling import SdfSamples

log = logging.getLogger(__name__)

SENSITIVITY_POINTS = 131072
"""Training points the loss is measured on: with 65 536 the scales of the large matrices moved by up to 1.5x
between two subsets, with 200 000 by 1.1x; evaluated in chunks of :data:`SENSITIVITY_CHUNK`."""
SENSITIVITY_CHUNK = 65536  # points per evaluation, to bound memory
NOISE_PAIRS = 2  # antithetic pairs per tensor (the module docstring)
NOISE_SCALE = 2.0
"""Noise spans this many RMS steps: large enough to stand out of the float loss's rounding, small enough
that the added loss still grows as the square of the noise."""
SCALE_RANGE = (0.25, 4.0)
"""Step scales are clipped to this range (two bits finer or coarser than the RMS step at most)."""


def tensor_sensitivities(
    model: KeySphereNet,
    samples: SdfSamples,
    bits: int,
    train: TrainConfig,
    generator: torch.Generator,
) -> dict[str, float]:
    """Loss added by noise of one RMS step at ``bits`` in each trained tensor alone, by name (>= 0).

    Parameters
    ----------
    model : KeySphereNet
        The trained float network; left unchanged.
    samples : SdfSamples
        Its training points (N, 3) and signed distances (N,); :data:`SENSITIVITY_POINTS` of them are used.
    bits : int
        The weight bit width whose RMS step is the unit of noise.
    train : TrainConfig
        Whose loss (clamp and floor) is measured, the training's.
    generator : torch.Generator
        Seeded CPU generator for the subset and the noise (same seed, same scales).
        The losses are computed on one CPU thread, so the result does not depend on
        the thread count either.
    """
    device = next(model.parameters()).device
    chosen = torch.randperm(len(samples.sdf), generator=generator)[:SENSITIVITY_POINTS].sort().values.numpy()
    points = torch.from_numpy(np.ascontiguousarray(samples.points[chosen])).to(device)
    target = torch.from_numpy(np.ascontiguousarray(samples.sdf[chosen])).to(device)
    parameters = {name: p.detach() for name, p in model.named_parameters()}
    noises = {}  # drawn up front, tensor by tensor, so that the chunking does not change them
    for name, value in parameters.items():
        step = rms_step_of(value, bits)
        noises[name] = [
            ((torch.rand(value.shape, generator=generator) - 0.5) * (step * NOISE_SCALE)).to(device) for _ in range(NOISE_PAIRS)
        ]
    # Summed loss of the unchanged network, and of each tensor with each noise added (+) and subtracted (-).
    base = 0.0
    totals = {name: [[0.0, 0.0] for _ in range(NOISE_PAIRS)] for name in parameters}
    was_training = model.training
    model.eval()
    # On one thread: torch's parallel sums split the work by thread, so with 2 threads the losses differed from
    # those on one in the 6th digit, the scales with them, and a float32 step in its last bit (~1-2 s an encode).
    with torch.no_grad(), torch_threads(1):
        for start in range(0, len(target), SENSITIVITY_CHUNK):
            chunk = slice(start, start + SENSITIVITY_CHUNK)
            layer_inputs = _layer_inputs(model, points[chunk])

            def summed_loss(prediction, chunk=chunk):
                return float(sdf_loss(prediction, target[chunk])) * len(target[chunk])

            base += summed_loss(model.output(layer_inputs[-1]).squeeze(1))
            for name, pairs in noises.items():
                for pair, noise in zip(totals[name], pairs, strict=True):
                    for side, sign in enumerate((1.0, -1.0)):
                        changed = parameters[name] + sign * noise
                        pair[side] += summed_loss(_prediction_with(model, layer_inputs, points[chunk], name, changed))
    model.train(was_training)
    count = len(target)
    base /= count
    return {
        name: max(0.0, sum(0.5 * (plus / count + minus / count) - base for plus, minus in pairs) / NOISE_PAIRS / NOISE_SCALE**2)
        for name, pairs in totals.items()
    }


def _layer_inputs(model: KeySphereNet, points: torch.Tensor) -> list[torch.Tensor]:
    """What each hidden layer reads at ``points`` (N, 3), first to last, then what the output layer reads."""
    inputs = [model.network_input(points)]
    for layer in model.hidden:
        inputs.append(model.activation(layer(inputs[-1])))
    return inputs


def _prediction_with(
    model: KeySphereNet, layer_inputs: list[torch.Tensor], points: torch.Tensor, name: str, value: torch.Tensor
) -> torch.Tensor:
    """The network's prediction (N,) with tensor ``name`` replaced by ``value``.

    A hidden or output layer's tensor changes nothing before that layer, so the
    pass starts from the layer's cached input (the sphere branch and the Fourier
    features, the costly part of a pass, are computed once per chunk).
    """
    module, _, field = name.rpartition(".")
    if module == "output":
        return functional_call(model.output, {field: value}, (layer_inputs[-1],)).squeeze(1)
    if module.startswith("hidden."):
        k = int(module.split(".")[1])
        h = model.activation(functional_call(model.hidden[k], {field: value}, (layer_inputs[k],)))
        for layer in model.hidden[k + 1 :]:
            h = model.activation(layer(h))
        return model.output(h).squeeze(1)
    return functional_call(model, {name: value}, (points,))  # the sphere branch feeds the network's input


def step_scales(sensitivities: dict[str, float], counts: dict[str, int]) -> dict[str, float]:
    """Step scale per tensor: ``sqrt(n / s)``, normalized so that the file keeps its size.

    The scales ``x`` are proportional to ``sqrt(counts / sensitivities)``, clipped
    to :data:`SCALE_RANGE`, with the factor chosen so that ``sum(n * log2(x)) = 0``:
    the bits one tensor saves another spends. A tensor of sensitivity 0 gets the
    coarsest step.
    """
    if set(sensitivities) != set(counts):
        raise ValueError("sensitivities and counts must name the same tensors")
    low, high = SCALE_RANGE
    smallest = min((s for s in sensitivities.values() if s > 0), default=1.0) * 1e-12
    raw = {name: 0.5 * math.log2(counts[name] / max(s, smallest)) for name, s in sensitivities.items()}

    def clipped(shift: float) -> dict[str, float]:
        return {name: min(math.log2(high), max(math.log2(low), value + shift)) for name, value in raw.items()}

    def rate_change(shift: float) -> float:
        return sum(counts[name] * value for name, value in clipped(shift).items())

    # rate_change rises with the shift; bisect for its zero (within the clipped range it always has one).
    below, above = -64.0 - max(raw.values()), 64.0 - min(raw.values())
    for _ in range(100):
        middle = 0.5 * (below + above)
        below, above = (middle, above) if rate_change(middle) < 0 else (below, middle)
    return {name: 2.0**value for name, value in clipped(0.5 * (below + above)).items()}


def allocate_steps(model: KeySphereNet, samples: SdfSamples, bits: int, train: TrainConfig, seed: int) -> dict[str, float]:
    """Step scale per trained tensor of ``model``, by name (:func:`tensor_sensitivities`, then :func:`step_scales`)."""
    generator = torch.Generator().manual_seed(seed)
    sensitivities = tensor_sensitivities(model, samples, bits, train, generator)
    counts = {name: p.numel() for name, p in model.named_parameters()}
    scales = step_scales(sensitivities, counts)
    log.info("step scales: %s", ", ".join(f"{name} {scale:.2f}" for name, scale in scales.items()))
    return scales
