"""Overfitting the key-sphere network to one mesh (L1 loss on the SDF).

SOAP (:class:`ksc.encoding.soap.Soap`, Adam in rotated bases; plain Adam with
``TrainConfig(optimizer="adam")``) with a short linear warm-up and a cosine
decay to 1 % of the peak learning rate; the steps themselves are
:class:`ksc.encoding.backprop.FusedTrainer`'s (forward, backward and optimizer written
out, 1.7x faster than autograd here).
Training stops after ``steps`` steps, or earlier when ``time_budget`` seconds
have passed; the schedule then follows wall time so that a budget-limited run
still anneals. A step-limited run is reproducible bit for bit on one machine;
a time-limited one is not.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from ksc.encoding.backprop import FusedTrainer, PointTable
from ksc.encoding.config import TrainConfig
from ksc.models.network import KeySphereNet

if TYPE_CHECKING:  # sampling needs libigl, which training does not
    from ksc.encoding.sampling import SdfSamples

log = logging.getLogger(__name__)

WARMUP = 0.03  # share of the run whose learning rate ramps up from 1 % of the peak (learning_rate_at)
FINAL_LR_FACTOR = 0.01  # the cosine decay ends at 1 % of the peak (learning_rate_at)
LOSS_WINDOW = 100  # steps the reported loss is averaged over: reading it syncs a GPU, so once per window


def learning_rate_at(progress: float, peak: float) -> float:
    """Learning rate at ``progress`` in [0, 1] of the run."""
    if progress < WARMUP:
        return peak * max(progress / WARMUP, 0.01)
    t = (progress - WARMUP) / (1.0 - WARMUP)
    floor = peak * FINAL_LR_FACTOR
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * min(t, 1.0)))


def sdf_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean L1 loss between predicted and true signed distances (N,)."""
    return torch.nn.functional.l1_loss(prediction, target)


def fit(
    model: KeySphereNet,
    samples: SdfSamples,
    config: TrainConfig,
    generator: torch.Generator,
    device: torch.device,
    on_step: Callable[[int, float], None] | None = None,
    parts: int = 1,
    table: PointTable | None = None,
) -> float:
    """Train ``model`` in place; returns the mean L1 loss of the last full window of 100 steps
    (of all steps when there were fewer; NaN when there were none).

    Parameters
    ----------
    model : KeySphereNet
        Network to train, already on ``device``.
    samples : SdfSamples
        Training points (N, 3) and signed distances (N,).
    config : TrainConfig
        Step count, batch size, learning rate, optional time budget.
    generator : torch.Generator
        Seeded CPU generator that draws the batches.
    device : torch.device
        Where the forward and backward passes run.
    on_step : callable, optional
        Called as ``on_step(step, loss)`` after every step (progress bars); ``loss`` is
        the mean of the last full window of 100 steps (NaN before the first).
    parts : int
        Slices of every batch, each on its own CPU core (:class:`ksc.encoding.backprop.FusedTrainer`); the
        result depends on it.
    table : PointTable, optional
        The training points' per-point constants, when the caller keeps them for the fine-tuning.
    """
    points = torch.from_numpy(np.ascontiguousarray(samples.points)).to(device)
    target = torch.from_numpy(np.ascontiguousarray(samples.sdf)).to(device)
    with FusedTrainer(model, points, target, config.batch_size, parts, table, config.optimizer) as trainer:
        loss_value = _run(trainer, config, generator, device, on_step)
    model.eval()
    return loss_value


def _run(trainer: FusedTrainer, config: TrainConfig, generator: torch.Generator, device, on_step) -> float:
    """:func:`fit`'s steps; the trained weights written back into the model."""
    target = trainer.target
    window_sum = torch.zeros((), device=device)
    window_steps = 0
    loss_value = float("nan")
    start = time.monotonic()
    for step in range(config.steps):
        progress = step / config.steps
        if config.time_budget:
            elapsed = time.monotonic() - start
            if elapsed >= config.time_budget:
                log.info("time budget of %.0f s reached after %d steps", config.time_budget, step)
                break
            progress = max(progress, elapsed / config.time_budget)
        index = torch.randint(len(target), (config.batch_size,), generator=generator).to(device)
        loss = trainer.step(index, learning_rate_at(progress, config.learning_rate))
        # Reading the loss forces a GPU sync, so it is read once per window, not every step.
        window_sum += loss
        window_steps += 1
        if window_steps == LOSS_WINDOW:
            loss_value = float(window_sum) / window_steps
            window_sum.zero_()
            window_steps = 0
        if on_step is not None:
            on_step(step, loss_value)
    trainer.write_back()
    if math.isnan(loss_value) and window_steps:
        loss_value = float(window_sum) / window_steps  # a run shorter than one window
    return loss_value
