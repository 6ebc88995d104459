"""Quantization-aware fine-tuning: teach the trained network to live with the weights the file stores.

After the float training, a short run trains through *fake-quantized* weights:
the forward pass sees each weight rounded exactly as the container's codec
will round it (one step per tensor: its root mean square at the file's bits,
times the tensor's scale from ``ksc.encoding.step_allocation``; see
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

from ksc.encoding.backprop import FusedTrainer, PointTable
from ksc.encoding.config import TrainConfig
from ksc.format.codecs import rms_step
from ksc.models.network import KeySphereNet

if TYPE_CHECKING:
    from ksc.encoding.sampling import SdfSamples

log = logging.getLogger(__name__)

LR_FACTOR = 0.1
"""Fine-tuning starts at this share of the training's peak learning rate."""


def rms_step_of(values: torch.Tensor, bits: int) -> float:
    """``rms_step`` of the root mean square of ``values`` at ``bits`` (float64; the file stores it as float32)."""
    return rms_step(float(torch.sqrt(torch.mean(values.detach().double() ** 2))), bits)


class FakeQuantizer:
    """Rounds a flat vector of tensors to what the file stores: each one to multiples of its ``uniform_ac`` step.

    ``sizes`` (T,): the element counts of the tensors laid end to end; ``bits``;
    ``scales`` (T,): each tensor's step scale (``ksc.encoding.step_allocation``). The step is
    :meth:`ksc.format.codecs.ArithmeticUniformCodec.step_for`'s, float32 as the file
    stores it. One call is a dozen vector operations whatever the tensor count; the
    fine-tuning computes its gradient at these values and applies it to the float
    ones (the straight-through estimator, :class:`ksc.encoding.backprop.FusedTrainer`'s ``transform``).
    """

    def __init__(self, sizes: list[int], bits: int, scales: list[float], device: torch.device | str = "cpu"):
        if len(sizes) != len(scales):
            raise ValueError(f"{len(sizes)} tensor sizes but {len(scales)} step scales")
        counts = torch.tensor(sizes, dtype=torch.int64)
        self.segment = torch.repeat_interleave(torch.arange(len(sizes)), counts).to(device)
        self.counts = counts.to(device, torch.float64)
        self.factors = torch.tensor([rms_step(1.0, bits) * s for s in scales], dtype=torch.float64, device=device)

    def __call__(self, flat: torch.Tensor) -> torch.Tensor:
        """``flat`` (P,) rounded tensor by tensor (P,)."""
        sums = torch.zeros_like(self.counts).index_add_(0, self.segment, flat.detach().double().square())
        rms = sums.div_(self.counts).sqrt_()
        # rms_step: a tensor of zeros gets step 1; the file stores the step as float32
        steps = torch.where(rms > 0, rms * self.factors, 1.0).float()[self.segment]
        return torch.round(flat / steps).mul_(steps)


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
    table: PointTable | None = None,
) -> float:
    """Fine-tune ``model`` in place through fake-quantized weights; returns the last 100 steps' mean L1 loss.

    ``steps`` batches of ``train.batch_size`` points; the learning rate decays
    from :data:`LR_FACTOR` times ``train.learning_rate`` to zero along a cosine;
    the loss is the training's mean L1 loss.
    ``step_scales`` multiplies each named tensor's step (``ksc.encoding.step_allocation``; missing: 1).
    ``parts``: slices of every batch on their own CPU cores (:class:`ksc.encoding.backprop.FusedTrainer`);
    ``table``: the points' constants, built by the training (built here otherwise).
    """
    step_scales = step_scales or {}
    learning_rate = LR_FACTOR * train.learning_rate
    points = torch.from_numpy(np.ascontiguousarray(samples.points)).to(device)
    target = torch.from_numpy(np.ascontiguousarray(samples.sdf)).to(device)

    losses = []
    with FusedTrainer(model, points, target, train.batch_size, parts, table, train.optimizer) as trainer:
        quantized = FakeQuantizer(trainer.sizes, bits, [step_scales.get(name, 1.0) for name in trainer.names], device)
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
