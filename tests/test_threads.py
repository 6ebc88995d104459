"""Training cores and torch's thread count."""

import os

import pytest
import torch

import ksc.encoding.threads
from ksc.encoding.threads import TRAINING_THREADS, torch_threads, training_threads


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="no os.sched_getaffinity on this platform")
@pytest.mark.parametrize(("cpus", "expected"), [({0}, 1), ({0, 1}, min(2, TRAINING_THREADS)), (set(range(8)), TRAINING_THREADS)])
def test_the_default_is_capped_by_the_usable_cpus(monkeypatch, cpus, expected):
    monkeypatch.setattr(ksc.encoding.threads.os, "sched_getaffinity", lambda pid: cpus)
    assert training_threads() == expected
    assert training_threads(3) == 3  # asked for: taken as it is


def test_torch_threads_restores_the_count():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), torch_threads(1):
        raise RuntimeError("inside")
    assert torch.get_num_threads() == before
