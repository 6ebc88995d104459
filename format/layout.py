"""Which tensors a network stores, by name and shape, in file order (``SPEC.md``, "Tensors").

Format 5.0 stores no tensor names or shapes: both follow from the ``model``
fields, in the order this table gives, so the header lists only each
tensor's codec and size (names and shapes were ~90 of a default file's
~7200 bytes). The model fields are validated by :class:`ksc.models.config.ModelConfig`
before any shape is computed, so a hostile header cannot ask for a huge layout.
"""

from __future__ import annotations

from ksc.errors import KscFormatError, KscInputError
from ksc.models.config import ModelConfig

MODEL_FIELDS = ("features", "spheres", "layers", "width", "activation", "weighting", "frequencies", "feature_dim")
"""The ``model`` values of a format 5.x header, in the order its array holds them; fixed for 5.x."""


def input_width(model: ModelConfig) -> int:
    """Width of the first hidden layer's input: the point, its Fourier features, the sphere feature."""
    return 3 + 6 * model.frequencies + model.feature_dim


def hidden_layer_sizes(model: ModelConfig) -> list[tuple[int, int]]:
    """``(inputs, outputs)`` of each hidden layer, first to last: what the network builds and a file stores."""
    widths = [input_width(model)] + [model.width] * model.layers
    return list(zip(widths[:-1], widths[1:], strict=True))


def tensor_layout(model: ModelConfig) -> list[tuple[str, tuple[int, ...]]]:
    """``(name, shape)`` of every stored tensor of ``model``, in file order.

    Weights are ``(out, in)`` matrices. The order is the network's: spheres,
    the sphere branch, the hidden layers first to last, the output layer.
    """
    layout = [("spheres", (model.spheres, 4))]
    if model.features == "direct":
        layout += [("sphere_layer.weight", (model.feature_dim, 4)), ("sphere_layer.bias", (model.feature_dim,))]
    else:
        layout.append(("latents", (model.spheres, model.feature_dim)))
    for k, (inputs, outputs) in enumerate(hidden_layer_sizes(model)):
        layout += [(f"hidden.{k}.weight", (outputs, inputs)), (f"hidden.{k}.bias", (outputs,))]
    layout += [("output.weight", (1, model.width)), ("output.bias", (1,))]
    return layout


def model_from_values(values) -> ModelConfig:
    """The network configuration from a 5.x header's ``model`` array (:data:`MODEL_FIELDS` order)."""
    if not isinstance(values, list) or len(values) != len(MODEL_FIELDS):
        raise KscFormatError(f"header field 'model' must be an array of {len(MODEL_FIELDS)} values {MODEL_FIELDS}")
    return model_from_map(dict(zip(MODEL_FIELDS, values, strict=True)))


def model_from_map(section: dict) -> ModelConfig:
    """A validated :class:`ModelConfig` from a header's ``model`` map; KscFormatError if it is not one."""
    try:
        return ModelConfig.from_dict(section)
    except (KscInputError, TypeError) as error:
        raise KscFormatError(f"header field 'model' is invalid: {error}") from None
