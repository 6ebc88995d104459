"""A training progress bar that appears only once training starts."""

from __future__ import annotations


class ProgressBar:
    """tqdm bar opened on the first step, so errors raised before training print alone.

    Use as a context manager and pass :meth:`on_step` to the encoder.
    """

    def __init__(self, total: int, desc: str, unit: str, disabled: bool):
        self._options = {"total": total, "desc": desc, "unit": unit, "leave": False, "mininterval": 0.5}
        self._disabled = disabled
        self._bar = None

    def on_step(self, step: int, loss: float) -> None:
        if self._disabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(**self._options)
        self._bar.update(1)
        if (step + 1) % 200 == 0:
            self._bar.set_postfix(loss=f"{loss:.5f}")

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *_exc) -> None:
        if self._bar is not None:
            self._bar.close()
