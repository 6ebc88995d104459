"""How idle OpenMP workers wait; settled before torch loads its OpenMP runtime.

A training step is a few dozen short parallel regions (matrix products,
activations, Adam's update) with serial Python work between them. GNU OpenMP
(libgomp, torch's CPU runtime on Linux) lets an idle worker spin for
``GOMP_SPINCOUNT`` iterations before it sleeps on a futex. With the variable
unset it spins 300,000 times, but only 100 when it counts more OpenMP threads
than CPUs (libgomp's manual, "GOMP_SPINCOUNT"); setting it explicitly keeps the
long spin, and on an idle 2-core machine training steps took 5.3 ms with it
against 6.9 ms without (``benchmarks/openmp_spin.py``).

On a machine that is doing something else the long spin is what hurts: a worker
that reached the end of a region spins on a core that the other process, or the
descheduled peer it waits for, needs. Beside a busy single-threaded process
two-thread steps took 3.0x their time alone with the long spin and 2.1x with
``OMP_WAIT_POLICY=PASSIVE`` (workers sleep at once), which alone costs 2.4x
(``benchmarks/results/busy.md``); one thread, the default (:data:`TRAINING_THREADS`),
took 1.03x. So an entry point that is about to train on more than one thread
measures how busy the CPUs it may run on are and picks the spin on an idle
machine, passive waiting on a busy one. Either way the arithmetic is the same: the files are
identical byte for byte.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

log = logging.getLogger(__name__)

SPIN_COUNT = "300000"
"""libgomp's own default for a machine that is not oversubscribed (about a millisecond of spinning)."""
WAIT_SETTINGS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
"""The environment variables through which a user chooses how OpenMP workers wait; ksc never overrides them."""
TRAINING_THREADS = 2
"""CPU cores an encode trains on unless told otherwise (one where only one is usable, :func:`training_threads`):
each batch is cut into this many slices, computed side by side in processes of one torch thread each
(:class:`ksc.backprop.FusedTrainer`), which waits in the kernel, not in OpenMP spins. Torch's own threads bought
nothing at this network's size on one 2-core machine and cost 1.8x beside a busy process
(``benchmarks/results/busy-encode.md``). The bytes depend on the count, so a batch task (one core each) and
``ksc encode --threads 1`` write the same files."""
BUSY_CORES = 0.5
"""Other work on this process's CPUs, in cores, from which training waits passively."""
LOAD_INTERVAL = 0.1
"""Seconds over which that work is measured (ten clock ticks per core at Linux's 100 Hz)."""


def keep_openmp_workers_spinning(check_load: bool = False) -> bool:
    """Choose how OpenMP workers wait, unless the user chose (``GOMP_SPINCOUNT`` or ``OMP_WAIT_POLICY``).

    Sets ``GOMP_SPINCOUNT`` to :data:`SPIN_COUNT`; with ``check_load`` (entry points that
    train next on more than one thread) and when :func:`cpu_load` finds at least :data:`BUSY_CORES` of other
    work, sets ``OMP_WAIT_POLICY=PASSIVE`` instead. Only a process's entry point should
    call this, before anything imports torch: libgomp reads its environment once, when
    it is loaded. Returns whether the setting can still take effect.
    """
    if "torch" in sys.modules:
        return False
    if any(name in os.environ for name in WAIT_SETTINGS):
        return True
    load = cpu_load() if check_load else None
    if load is not None and load >= BUSY_CORES:
        log.info("the CPUs are busy (%.1f cores of other work): OpenMP workers wait passively", load)
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
    else:
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True


def cpu_load(interval: float = LOAD_INTERVAL) -> float | None:
    """Cores' worth of CPU time spent on this process's CPUs over the next ``interval`` seconds.

    Read from ``/proc/stat``'s per-CPU lines (busy: every field but idle and
    iowait; hypervisor steal counts as busy, since it is a core this process
    cannot have). None where that file is missing or unreadable (not Linux).
    The caller is idle meanwhile, so what is measured is other work.
    """
    try:
        allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
        before = _cpu_times(allowed)
        time.sleep(interval)
        after = _cpu_times(allowed)
    except (OSError, ValueError):
        return None
    busy = sum(after[cpu][0] - before[cpu][0] for cpu in after if cpu in before)
    total = sum(after[cpu][1] - before[cpu][1] for cpu in after if cpu in before)
    if total <= 0:
        return None
    return len(after) * busy / total


def _cpu_times(allowed: set[int] | None) -> dict[int, tuple[int, int]]:
    """Per CPU number (within ``allowed``): (busy, total) clock ticks since boot."""
    times = {}
    with open("/proc/stat", encoding="ascii") as stat:
        for line in stat:
            name, *fields = line.split()
            if not (name.startswith("cpu") and name[3:].isdigit()):
                continue
            cpu = int(name[3:])
            if allowed is not None and cpu not in allowed:
                continue
            ticks = [int(value) for value in fields[:8]]  # user nice system idle iowait irq softirq steal
            idle = ticks[3] + ticks[4]
            times[cpu] = (sum(ticks) - idle, sum(ticks))
    if not times:
        raise ValueError("no per-CPU lines in /proc/stat")
    return times


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
