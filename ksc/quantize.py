"""Quantization-aware fine-tuning: teach the trained network to live with the weights the file stores.

After the float training, a short run trains through *fake-quantized* weights:
the forward pass sees each weight rounded exactly as the container's codec
will round it (one step per tensor: its root mean square at the file's bits,
times the tensor's scale from ``ksc.step_allocation``; see
``ksc.format.codecs.ArithmeticUniformCodec``), the
backward pass treats the rounding as the identity (straight-through
estimator), and the float weights keep absorbing the error. Without it, 8-bit
weights cost the bunny about 15 % of its Chamfer-L1 and 6-bit weights more
than double it (docs/method.md).
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from ksc.backprop import FusedTrainer
from ksc.config import TrainConfig
from ksc.format.codecs import rms_step
from ksc.model import KeySphereNet

if TYPE_CHECKING:
    from ksc.sampling import SdfSamples

log = logging.getLogger(__name__)

LR_FACTOR = 0.1
"""Fine-tuning starts at this share of the training's peak learning rate."""


def rms_step_of(values: torch.Tensor, bits: int) -> float:
    """``rms_step`` of the root mean square of ``values`` at ``bits`` (float64; the file stores it as float32)."""
    return rms_step(float(torch.sqrt(torch.mean(values.detach().double() ** 2))), bits)


def fake_quantize(values: torch.Tensor, bits: int, scale: float = 1.0) -> torch.Tensor:
    """``values`` rounded to multiples of the ``uniform_ac`` step at ``bits``, times ``scale``
    (``ksc.format.codecs.ArithmeticUniformCodec.step_for``).

    The fine-tuning computes its gradient at these values and applies it to the
    float ones (the straight-through estimator, :class:`ksc.backprop.FusedTrainer`'s ``transform``).
    """
    step = float(np.float32(rms_step_of(values, bits) * scale))  # the file stores the step as float32
    return torch.round(values / step) * step


def quantization_aware_finetune(
    model: KeySphereNet,
    samples: SdfSamples,
    bits: int,
    steps: int,
    train: TrainConfig,
    generator: torch.Generator,
    device: torch.device,
    step_scales: dict[str, float] | None = None,
    parts: int = 1,
) -> float:
    """Fine-tune ``model`` in place through fake-quantized weights; returns the last 100 steps' mean L1 loss.

    ``steps`` batches of ``train.batch_size`` points; the learning rate decays
    from :data:`LR_FACTOR` times ``train.learning_rate`` to zero along a cosine;
    the loss is the training's mean L1 loss.
    ``step_scales`` multiplies each named tensor's step (``ksc.step_allocation``; missing: 1).
    ``parts``: slices of every batch on their own CPU cores (:class:`ksc.backprop.FusedTrainer`).
    """
    step_scales = step_scales or {}
    learning_rate = LR_FACTOR * train.learning_rate
    points = torch.from_numpy(np.ascontiguousarray(samples.points)).to(device)
    target = torch.from_numpy(np.ascontiguousarray(samples.sdf)).to(device)

    def quantized(name: str, values: torch.Tensor) -> torch.Tensor:
        return fake_quantize(values, bits, step_scales.get(name, 1.0))

    losses = []
    with FusedTrainer(model, points, target, train.batch_size, parts) as trainer:
        for step in range(steps):
            index = torch.randint(len(target), (train.batch_size,), generator=generator).to(device)
            rate = 0.5 * learning_rate * (1.0 + math.cos(math.pi * step / steps))
            loss = trainer.step(index, rate, transform=quantized)
            if step >= steps - 100:
                losses.append(loss)
        trainer.write_back()
    model.eval()
    result = float(torch.stack(losses).mean()) if losses else float("nan")
    log.info("quantization-aware fine-tuning at %d bits: L1 loss %.5f", bits, result)
    return result
