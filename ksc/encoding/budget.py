"""Fitting a file to ``--max-bytes``: before training, the widest network whose planned size fits; after it,
the most bits per weight whose file fits."""

from __future__ import annotations

import logging
import math
from dataclasses import replace
from typing import TYPE_CHECKING

from ksc.encoding.config import EncodeOptions
from ksc.errors import KscInputError
from ksc.models.config import ModelConfig
from ksc.models.network import stored_shapes

if TYPE_CHECKING:
    from ksc.encoding.pipeline import EncodeResult, TrainedMesh

log = logging.getLogger(__name__)

MIN_RATE_BITS, MAX_RATE_BITS = 4, 12
"""Weight bit widths ``--max-bytes`` chooses from."""
PLANNED_BITS = 8
"""The bit width :func:`fit_width_to_budget` plans for: the presets' (``ksc.encoding.config.PRESETS``)."""
PLANNED_VALUE_BYTES, PLANNED_TENSOR_BYTES = 1.0, 12.0
"""Planned size of one range-coded 8-bit weight, and of each tensor's codec and coder tail.
Trained weights take less (7.6-8.0 bits each in the 15 meshes' default files, tails
included); barely trained ones, still near their uniform initialization, about this.
Pessimistic on purpose: a plan that is a few % too small costs a width unit, one that is
too large costs a bit of every weight."""
PLANNED_HEADER_BYTES, PLANNED_SPHERE_BYTES = 320.0, 2.6
"""Planned header and per-sphere bytes: a default file's header and spheres take 513-557 bytes for 64 spheres
(format 5.0, the 15 meshes' default files)."""
MIN_PLANNED_WIDTH = 8


def fit_bytes(trained: TrainedMesh, max_bytes: int) -> EncodeResult:
    """The file of ``trained`` at the most bits per weight (``options.weight_bits`` up to 12) that fits ``max_bytes``."""
    options = trained.options
    # Sizes hardly change with fine-tuning: rank bit widths by a quick quantization, then confirm.
    smallest = None
    for bits in range(max(options.weight_bits, MAX_RATE_BITS), MIN_RATE_BITS - 1, -1):
        estimate = len(trained.encode(bits, fine_tune=False).data)
        smallest = estimate if smallest is None else min(smallest, estimate)
        if estimate > max_bytes:
            continue
        result = trained.encode(bits)
        if len(result.data) <= max_bytes:
            log.info("%d-bit weights: %d bytes (limit %d)", bits, len(result.data), max_bytes)
            return result
    raise KscInputError(
        f"cannot fit the mesh in {max_bytes} bytes: the smallest file would be about {smallest} bytes"
        " (4-bit weights); allow more bytes or use fewer --spheres, --layers or a smaller --width"
    )


def planned_bytes(config: ModelConfig) -> float:
    """A slightly pessimistic size of a file storing a trained ``config`` at 8 bits per weight, before training."""
    weights = [math.prod(shape) for name, shape in stored_shapes(config).items() if name != "spheres"]
    fixed = PLANNED_HEADER_BYTES + PLANNED_SPHERE_BYTES * config.spheres
    return fixed + PLANNED_VALUE_BYTES * sum(weights) + PLANNED_TENSOR_BYTES * len(weights)


def fit_width_to_budget(options: EncodeOptions, max_bytes: int) -> EncodeOptions:
    """``options`` with the widest hidden layers, up to ``options.model.width``, whose
    :func:`planned_bytes` at 8 bits fit ``max_bytes`` (at least :data:`MIN_PLANNED_WIDTH`).

    Narrowing the network spends a small budget better than coarser weights: at
    ~5.3 KB a 6 x 26 network at 8 bits has 0.83x (median over 15 meshes) the
    Chamfer-L1 of the 6 x 32 one at 6 bits (docs/method.md, "Store"). :func:`encode_mesh`
    then picks the bits that fit after training, 8 or more when the plan holds.
    """
    width = options.model.width
    while width > MIN_PLANNED_WIDTH and planned_bytes(replace(options.model, width=width)) > max_bytes:
        width -= 1
    if width != options.model.width:
        log.info("hidden width %d instead of %d to fit %d bytes at %d bits", width, options.model.width, max_bytes, PLANNED_BITS)
    return replace(options, model=replace(options.model, width=width))
