"""Where tensors go: CUDA when present, else the CPU (the reference path)."""

from __future__ import annotations

import torch

from ksc.errors import KscInputError


def default_device() -> torch.device:
    """The first CUDA device when one is usable, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def resolve_device(name: str | None) -> torch.device:
    """``None`` or ``'auto'`` picks :func:`default_device`; otherwise a torch device name.

    Raises KscInputError for a name torch does not know or a CUDA device this machine lacks.
    """
    if name in (None, "auto"):
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise KscInputError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise KscInputError(f"device {name!r} asked for, but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise KscInputError(f"device {name!r} asked for, but this machine has {torch.cuda.device_count()} CUDA device(s)")
    elif device.type != "cpu":
        raise KscInputError(f"device {name!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device
