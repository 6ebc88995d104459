"""The networks a .ksc file can hold, by id: each with its shape (a config dataclass), the torch module an encode
fits and the numpy runtime a decode evaluates, and where the browser's runtime lives.

Every registered model is held to one contract (``tests/test_network_contract.py``): golden vectors, points with
the values and gradients its torch module gave, under ``tests/golden/vectors/<id>/``, which the torch module, the
hand-written training step, the numpy runtime and the JavaScript runtime must all reproduce. Adding a model is an
entry here and a set of vectors there. Importing this module imports neither torch nor numpy.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class ModelEntry:
    """Where a model's parts live, as ``module:name`` references (loaded on demand)."""

    id: str
    config: str
    """Its shape: a frozen dataclass of the file's ``model`` fields."""
    network: str
    """The torch module an encode fits (needs the ``encode`` extra)."""
    runtime: str
    """The numpy runtime a decode evaluates: built from a config and the file's tensors."""
    web_runtime: str
    """The JavaScript runtime's module in ``web/src/`` (the viewer and ksc-decoder)."""

    def load(self, part: str):
        """The class that ``part`` ("config", "network" or "runtime") names."""
        module, name = getattr(self, part).split(":")
        return getattr(importlib.import_module(module), name)


KEY_SPHERES = ModelEntry(
    id="key-spheres",
    config="ksc.models.config:ModelConfig",
    network="ksc.models.network:KeySphereNet",
    runtime="ksc.models.runtime:SphereField",
    web_runtime="field.js",
)
MODELS = {entry.id: entry for entry in (KEY_SPHERES,)}
"""Every model a file may hold. Format versions 1.x-5.x hold only ``key-spheres`` and do not name it."""


def model_of_format(major: int) -> ModelEntry:
    """The model a file of format ``major`` holds (every version so far: the key-sphere network)."""
    return KEY_SPHERES
