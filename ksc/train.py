"""Overfitting the key-sphere network to one mesh (L1 loss on the SDF).

Adam with a short linear warm-up and a cosine decay to 1 % of the peak
learning rate. Training stops after ``steps`` steps, or earlier when
``time_budget`` seconds have passed; the schedule then follows wall time so
that a budget-limited run still anneals. A step-limited run is reproducible
bit for bit on one machine; a time-limited one is not.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch

from ksc.config import TrainConfig
from ksc.model import KeySphereNet

if TYPE_CHECKING:  # sampling needs libigl, which training does not
    from ksc.sampling import SdfSamples

log = logging.getLogger(__name__)

WARMUP = 0.03
FINAL_LR_FACTOR = 0.01
LOSS_WINDOW = 100
FOCUS_REFRESHES = 12
"""With ``TrainConfig.error_focus``, every sample's error is measured this many times a run, evenly spaced
(every 2400 of the default 28 800 steps; one measurement of 1M points costs about 1 s on 2 cores)."""
MIN_FOCUS_INTERVAL = 100
EVALUATION_CHUNK = 65536


def learning_rate_at(progress: float, peak: float) -> float:
    """Learning rate at ``progress`` in [0, 1] of the run."""
    if progress < WARMUP:
        return peak * max(progress / WARMUP, 0.01)
    t = (progress - WARMUP) / (1.0 - WARMUP)
    floor = peak * FINAL_LR_FACTOR
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * min(t, 1.0)))


def adam(parameters, learning_rate: float) -> torch.optim.Adam:
    """Adam with its fused kernel: one update for all tensors instead of several per
    tensor, 0.87-0.91x the time of a CPU training step here (2.95 against 3.25 ms at
    batch 2048, interleaved runs); the result differs from the unfused Adam's in the last bits."""
    return torch.optim.Adam(parameters, lr=learning_rate, fused=True)


def sdf_loss(prediction: torch.Tensor, target: torch.Tensor, clamp: float | None = None, far_floor: float = 0.0) -> torch.Tensor:
    """Mean L1 loss between predicted and true signed distances (N,).

    With ``clamp``, a point whose true distance ``|t|`` exceeds ``clamp`` costs
    nothing while its prediction lies on the right side between
    ``max(clamp, far_floor * |t|)`` and ``|t|``, and the L1 distance to that
    interval otherwise. Far points then stop competing with the surface for
    the network's capacity, yet the field stays a lower bound of the distance
    there, which the decoder's coarse-to-fine search relies on to skip empty
    blocks (with no upper bound, far values grew until the search skipped the
    dragon's whole surface; DeepSDF's clamp of both values leaves a prediction
    beyond the clamp without gradient, even on the wrong side). The floor keeps far values
    from sagging towards zero between samples, where they became ghost
    surfaces (thingi_76277 with a floor of ``clamp`` alone: 893 pieces).
    """
    if clamp is None:
        return torch.nn.functional.l1_loss(prediction, target)
    magnitude = target.abs()
    low = torch.where(magnitude > clamp, (far_floor * magnitude).clamp_min(clamp), magnitude)
    signed = prediction * torch.where(target < 0, -1.0, 1.0)  # the prediction as if the point were inside
    return (torch.relu(low - signed) + torch.relu(signed - magnitude)).mean()


def fit(
    model: KeySphereNet,
    samples: SdfSamples,
    config: TrainConfig,
    generator: torch.Generator,
    device: torch.device,
    on_step: Callable[[int, float], None] | None = None,
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
    """
    points = torch.from_numpy(np.ascontiguousarray(samples.points)).to(device)
    target = torch.from_numpy(np.ascontiguousarray(samples.sdf)).to(device)
    parameters = list(model.parameters())
    optimizer = adam(parameters, config.learning_rate)
    batches = BatchSampler(len(target), config.batch_size, generator, device)
    focus_interval = max(MIN_FOCUS_INTERVAL, config.steps // FOCUS_REFRESHES)
    averaged, averaged_steps = None, 0
    window_sum = torch.zeros((), device=device)
    window_steps = 0
    loss_value = float("nan")
    start = time.monotonic()
    model.train()
    for step in range(config.steps):
        progress = step / config.steps
        if config.time_budget:
            elapsed = time.monotonic() - start
            if elapsed >= config.time_budget:
                log.info("time budget of %.0f s reached after %d steps", config.time_budget, step)
                break
            progress = max(progress, elapsed / config.time_budget)
        for group in optimizer.param_groups:
            group["lr"] = learning_rate_at(progress, config.learning_rate)
        if config.error_focus and step and step % focus_interval == 0:
            batches.focus(sample_errors(model, points, target), config.error_focus)
            model.train()
        index = batches.draw()
        loss = sdf_loss(model(points[index]), target[index], config.loss_clamp, config.far_floor)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if config.average_tail and progress >= 1.0 - config.average_tail:
            averaged_steps += 1
            averaged = _running_mean(averaged, parameters, averaged_steps)
        # Reading the loss forces a GPU sync, so it is read once per window, not every step.
        window_sum += loss.detach()
        window_steps += 1
        if window_steps == LOSS_WINDOW:
            loss_value = float(window_sum) / window_steps
            window_sum.zero_()
            window_steps = 0
        if on_step is not None:
            on_step(step, loss_value)
    if averaged is not None:
        with torch.no_grad():
            for parameter, mean in zip(parameters, averaged, strict=True):
                parameter.copy_(mean)
        log.info("kept the mean of the last %d steps' parameters", averaged_steps)
    model.eval()
    if math.isnan(loss_value) and window_steps:
        loss_value = float(window_sum) / window_steps  # a run shorter than one window
    return loss_value


class BatchSampler:
    """Draws the indices of training batches.

    Uniformly over the samples until :meth:`focus` is called; then each index is
    drawn with probability ``(1 - share) / N + share * e_i / sum(e)``, so that
    ``share`` of every batch goes where the network is currently most wrong
    (hard-example sampling). The uniform part keeps every sample in play, far
    points included, whose neglect would let ghost surfaces grow there.

    Parameters
    ----------
    count : int
        Number of samples N.
    batch_size : int
        Indices per batch.
    generator : torch.Generator
        Seeded CPU generator; an unfocused sampler draws exactly what
        ``torch.randint`` drew before this class existed (same files).
    device : torch.device
        Where the returned indices live.
    """

    def __init__(self, count: int, batch_size: int, generator: torch.Generator, device: torch.device):
        self.count, self.batch_size, self.generator, self.device = count, batch_size, generator, device
        self._cumulative: torch.Tensor | None = None

    def focus(self, errors: torch.Tensor, share: float) -> None:
        """Draw ``share`` of each later batch in proportion to ``errors`` (N,), the rest uniformly."""
        errors = errors.detach().to("cpu", torch.float64)
        total = float(errors.sum())
        if total > 0.0:
            weights = (1.0 - share) / self.count + share * errors / total
        else:  # a perfect fit: nothing to focus on
            weights = torch.full_like(errors, 1.0 / self.count)
        self._cumulative = torch.cumsum(weights, dim=0)

    def draw(self) -> torch.Tensor:
        """Indices (batch_size,) int64 of the next batch."""
        if self._cumulative is None:
            index = torch.randint(self.count, (self.batch_size,), generator=self.generator)
        else:
            uniform = torch.rand(self.batch_size, generator=self.generator, dtype=torch.float64) * self._cumulative[-1]
            index = torch.searchsorted(self._cumulative, uniform).clamp_max_(self.count - 1)
        return index.to(self.device)


@torch.no_grad()
def sample_errors(model: KeySphereNet, points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Absolute error (N,) of ``model`` at every training point (N, 3), evaluated in chunks."""
    model.eval()
    chunks = range(0, len(target), EVALUATION_CHUNK)
    return torch.cat([(model(points[i : i + EVALUATION_CHUNK]) - target[i : i + EVALUATION_CHUNK]).abs() for i in chunks])


@torch.no_grad()
def _running_mean(mean: list[torch.Tensor] | None, parameters: list[torch.Tensor], count: int) -> list[torch.Tensor]:
    """``mean`` of the parameters over ``count`` steps, updated in place with the current ones."""
    if mean is None:
        return [parameter.detach().clone() for parameter in parameters]
    for running, parameter in zip(mean, parameters, strict=True):
        running.lerp_(parameter, 1.0 / count)
    return mean
