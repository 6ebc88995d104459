"""Options shared by several commands."""

from __future__ import annotations

import functools
import logging
from dataclasses import replace

import click

from ksc.encoding.config import PRESETS, EncodeOptions

DEFAULTS = EncodeOptions()


def configure_logging(verbose: int, quiet: bool) -> None:
    """Route the library's ``logging`` to stderr at the level -v/-q ask for."""
    if quiet:
        level = logging.ERROR
    else:
        level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    logging.basicConfig(format="ksc: %(levelname)s: %(message)s")
    logging.getLogger("ksc").setLevel(level)


def verbosity_options(function):
    """``-v`` (repeatable: info, then debug logging) and ``-q`` (errors only, no progress or summary)."""

    @click.option("-v", "--verbose", count=True, help="More logging (repeat for debug).")
    @click.option("-q", "--quiet", is_flag=True, help="Only print errors.")
    @functools.wraps(function)
    def wrapper(*args, verbose, quiet, **kwargs):
        configure_logging(verbose, quiet)
        return function(*args, quiet=quiet, **kwargs)

    return wrapper


device_option = click.option(
    "--device",
    default="auto",
    show_default=True,
    help="Torch device: auto (CUDA when available, else CPU), cpu, cuda, cuda:1, ...",
)


ENCODE_OPTIONS = [
    click.option("--spheres", default=DEFAULTS.model.spheres, show_default=True, help="Number of key spheres (M)."),
    click.option("--layers", default=DEFAULTS.model.layers, show_default=True, help="Hidden layers of the SDF network (K)."),
    click.option("--width", type=int, default=None, help="Units per hidden layer (Q); default: the preset's."),
    click.option(
        "--feature-dim",
        default=DEFAULTS.model.feature_dim,
        show_default=True,
        help="E, values per sphere feature (the paper's 29).",
    ),
    click.option(
        "--steps", type=int, default=None, help=f"Training steps (default: the preset's; {DEFAULTS.train.steps} for default)."
    ),
    click.option(
        "--time-budget",
        type=float,
        default=None,
        help="Stop the float training after this many seconds (not reproducible); fine-tuning follows.",
    ),
    click.option(
        "--batch-size",
        type=int,
        default=None,
        help=f"Points per step (default: the preset's; {DEFAULTS.train.batch_size} for default).",
    ),
    click.option("--lr", "learning_rate", default=DEFAULTS.train.learning_rate, show_default=True, help="Peak learning rate."),
    click.option(
        "--samples",
        type=int,
        default=None,
        help=f"Training points with their SDF (default: the preset's; {DEFAULTS.samples:,} for default).",
    ),
    click.option(
        "--preset",
        type=click.Choice(list(PRESETS)),
        default="default",
        show_default=True,
        help="Rate point, or a faster training: "
        + ", ".join(f"{name} {p.weight_bits}-bit width {p.width} ({p.summary})" for name, p in PRESETS.items())
        + ".",
    ),
    click.option("--bits", type=int, default=None, help="Bits per quantized weight (2-16); overrides --preset."),
    click.option(
        "--max-bytes",
        type=click.IntRange(min=1),
        default=None,
        help="Never write more bytes: narrows the network to fit at 8 bits (unless --width is given),"
        " then keeps the most bits per weight that fit.",
    ),
    click.option(
        "--qat-steps",
        type=int,
        default=None,
        help=f"Quantization-aware fine-tuning steps (0: none; default: the preset's, {DEFAULTS.qat_steps} for default).",
    ),
    click.option("--seed", default=DEFAULTS.seed, show_default=True),
]
"""The options of ``ksc encode`` that shape the file; ``ksc batch`` takes the same. The research knobs (sphere
features, activation, Fourier octaves, the distance backend) are ``EncodeOptions`` fields of the Python API
(``ksc.encode(mesh, model=ModelConfig(...), distance=...)``), not options: no measurement made them pay
(docs/results.md)."""


def encode_options(function):
    """Decorate a command with :data:`ENCODE_OPTIONS`."""
    for option in reversed(ENCODE_OPTIONS):
        function = option(function)
    return function


def encode_job(settings: dict):
    """The :class:`ksc.tools.batch.EncodeJob` (options, byte cap) that :data:`ENCODE_OPTIONS`' values ask for."""
    from ksc.encoding.config import TrainConfig, preset_options
    from ksc.models.config import ModelConfig
    from ksc.tools.batch import EncodeJob

    preset = preset_options(settings["preset"])
    width = settings["width"]

    def given(name: str, fallback):
        return settings[name] if settings[name] is not None else fallback

    options = replace(
        preset,
        model=ModelConfig(
            features=preset.model.features,
            spheres=settings["spheres"],
            layers=settings["layers"],
            width=given("width", preset.model.width),
            frequencies=preset.model.frequencies,
            feature_dim=settings["feature_dim"],
            activation=preset.model.activation,
        ),
        train=TrainConfig(
            steps=given("steps", preset.train.steps),
            batch_size=given("batch_size", preset.train.batch_size),
            learning_rate=settings["learning_rate"],
            time_budget=settings["time_budget"],
        ),
        samples=given("samples", preset.samples),
        distance=preset.distance,
        weight_bits=given("bits", preset.weight_bits),
        qat_steps=given("qat_steps", preset.qat_steps),
        seed=settings["seed"],
    )
    return EncodeJob(options=options, max_bytes=settings["max_bytes"], fit_width=width is None)
