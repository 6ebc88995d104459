"""Where tensors go: CUDA when present, else the CPU (the reference path)."""

from __future__ import annotations

import torch


def default_device() -> torch.device:
    """The first CUDA device when one is usable, else the CPU."""
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


def resolve_device(name: str | None) -> torch.device:
    """``None`` or ``'auto'`` picks :func:`default_device`; otherwise a torch device name."""
    if name in (None, "auto"):
        return default_device()
    return torch.device(name)
