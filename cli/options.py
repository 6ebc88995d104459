"""Options shared by several commands."""

from __future__ import annotations

import functools
import logging

import click

from ksc.config import ACTIVATION_NAMES, DISTANCES, FEATURE_BRANCHES, PRESETS, EncodeOptions

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
        "--frequencies",
        default=DEFAULTS.model.frequencies,
        show_default=True,
        help="Octaves of Fourier features of the query point (0: the paper's network).",
    ),
    click.option(
        "--features",
        type=click.Choice(FEATURE_BRANCHES),
        default=DEFAULTS.model.features,
        show_default=True,
        help="Sphere features: direct (DPFE, one 4->E layer) or latent (LPFE, a trained E-vector per sphere).",
    ),
    click.option(
        "--feature-dim",
        default=DEFAULTS.model.feature_dim,
        show_default=True,
        help="E, values per sphere feature (the paper's 29).",
    ),
    click.option("--activation", type=click.Choice(ACTIVATION_NAMES), default=DEFAULTS.model.activation, show_default=True),
    click.option("--steps", default=DEFAULTS.train.steps, show_default=True, help="Training steps."),
    click.option(
        "--time-budget",
        type=float,
        default=None,
        help="Stop the float training after this many seconds (not reproducible); fine-tuning follows.",
    ),
    click.option("--batch-size", default=DEFAULTS.train.batch_size, show_default=True),
    click.option("--lr", "learning_rate", default=DEFAULTS.train.learning_rate, show_default=True, help="Peak learning rate."),
    click.option("--samples", default=DEFAULTS.samples, show_default=True, help="Training points with their SDF."),
    click.option(
        "--distance",
        type=click.Choice(DISTANCES),
        default=DEFAULTS.distance,
        show_default=True,
        help="Training distances: exact (libigl AABB tree) or pysdf (faster, approximate: worse fits on thin meshes).",
    ),
    click.option(
        "--preset",
        type=click.Choice(list(PRESETS)),
        default="default",
        show_default=True,
        help="Rate point: "
        + ", ".join(f"{name} {p.weight_bits}-bit width {p.width} ({p.typical_size})" for name, p in PRESETS.items())
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
        "--qat-steps", default=DEFAULTS.qat_steps, show_default=True, help="Quantization-aware fine-tuning steps (0: none)."
    ),
    click.option("--seed", default=DEFAULTS.seed, show_default=True),
]
"""The options of ``ksc encode`` that shape the file; ``ksc batch`` takes the same."""


def encode_options(function):
    """Decorate a command with :data:`ENCODE_OPTIONS`."""
    for option in reversed(ENCODE_OPTIONS):
        function = option(function)
    return function


def encode_job(settings: dict):
    """The :class:`ksc.batch.EncodeJob` (options, byte cap) that :data:`ENCODE_OPTIONS`' values ask for."""
    from ksc.batch import EncodeJob
    from ksc.config import ModelConfig, TrainConfig

    rate = PRESETS[settings["preset"]]
    width = settings["width"]
    options = EncodeOptions(
        model=ModelConfig(
            features=settings["features"],
            spheres=settings["spheres"],
            layers=settings["layers"],
            width=width if width is not None else rate.width,
            frequencies=settings["frequencies"],
            feature_dim=settings["feature_dim"],
            activation=settings["activation"],
        ),
        train=TrainConfig(
            steps=settings["steps"],
            batch_size=settings["batch_size"],
            learning_rate=settings["learning_rate"],
            time_budget=settings["time_budget"],
        ),
        samples=settings["samples"],
        distance=settings["distance"],
        weight_bits=settings["bits"] if settings["bits"] is not None else rate.weight_bits,
        qat_steps=settings["qat_steps"],
        seed=settings["seed"],
    )
    return EncodeJob(options=options, max_bytes=settings["max_bytes"], fit_width=width is None)
