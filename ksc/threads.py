"""How long idle OpenMP workers spin before they sleep; settled before torch loads its OpenMP runtime.

A training step is a few dozen short parallel regions (matrix products,
activations, Adam's update) with serial Python work between them. GNU OpenMP
(libgomp, torch's CPU runtime on Linux) lets an idle worker spin for
``GOMP_SPINCOUNT`` iterations before it sleeps on a futex. With the variable
unset it spins 300,000 times, but only 100 when it counts more OpenMP threads
than CPUs (libgomp's manual, "GOMP_SPINCOUNT"); setting the variable
explicitly keeps the long spin. On this project's 2-core machine, training
steps of the default network with two threads took a median 6.88 ms without
it and 5.29 ms with it (``benchmarks/openmp_spin.py``, interleaved child
processes); whole encodes there did not show a steady gain (0.94x and
1.11x, within that machine's drift). That the short spin is libgomp's
oversubscription rule at work is an inference from its manual, not measured.
The arithmetic is the same either way: the files are identical byte for byte
(checked by the benchmark).
"""

from __future__ import annotations

import os
import sys

SPIN_COUNT = "300000"
"""libgomp's own default for a machine that is not oversubscribed (about a millisecond of spinning)."""
WAIT_SETTINGS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
"""The environment variables through which a user chooses how OpenMP workers wait; ksc never overrides them."""


def keep_openmp_workers_spinning() -> bool:
    """Set ``GOMP_SPINCOUNT`` to :data:`SPIN_COUNT` unless the user chose a wait policy.

    Only a process's entry point should call this (the CLI, the benchmarks, the
    tests), before anything imports torch: libgomp reads its environment once,
    when it is loaded. Returns whether the setting can still take effect.
    """
    if "torch" in sys.modules:
        return False
    if not any(name in os.environ for name in WAIT_SETTINGS):
        os.environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True
