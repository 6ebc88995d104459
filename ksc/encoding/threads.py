"""CPU cores of an encode's training, and torch's own thread count.

An encode trains on :data:`TRAINING_THREADS` cores: each batch is cut into that
many slices, computed side by side in processes of one torch thread each
(:class:`ksc.encoding.backprop.FusedTrainer`), whose waits sleep in the kernel. Torch's
own thread pool was the way before: a training step is some seventy kernels of
2048 x 34 matrices, too small for a parallel region to pay for its barrier, and
its OpenMP workers spin while they wait, on a core that other work or a
descheduled peer needs. Two torch threads bought 1.1x on an idle 2-core machine
and cost 3-6x beside a busy process (``benchmarks/results/archive/busy-0.15.md``),
two processes 1.21x a step (``research/design/results/train-step-parts.md``) and 1.25x an encode beside
it (``research/design/results/busy.md``).
So everything an encode runs in torch runs on one thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

TRAINING_THREADS = 2
"""CPU cores an encode trains on unless told otherwise (one where only one is usable, :func:`training_threads`).
The bytes depend on the count, so a batch task (one core each) and ``ksc encode --threads 1`` write the same
files."""


def training_threads(requested: int | None = None) -> int:
    """``requested``, or :data:`TRAINING_THREADS` capped at the CPUs this process may run on."""
    if requested is not None:
        return requested
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(TRAINING_THREADS, usable))


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run torch's CPU work on ``count`` threads inside the block, restoring the count after."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
