"""The ``ksc`` command: thin click commands over the library.

Every user error (a bad file, a bad option) is printed as one line starting
with ``ksc: error:`` and exits with status 1; outputs are written atomically.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click

from ksc import __version__
from ksc.config import (
    ACTIVATION_NAMES,
    DEFAULT_RESOLUTION,
    DISTANCES,
    FEATURE_BRANCHES,
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    PRESETS,
    EncodeOptions,
)
from ksc.errors import KscError
from ksc.format.report import describe_container
from ksc.threads import keep_openmp_workers_spinning

from .options import device_option, verbosity_options
from .progress import ProgressBar

DEFAULTS = EncodeOptions()
ENCODE_EXTRA = ("torch", "pysdf", "igl")
"""Modules of the ``encode`` extra: `encode` and `compare` need them, decoding does not."""


class KscGroup(click.Group):
    """Turns ksc's errors and OS errors into one line and exit status 1 (2 for usage errors)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except click.UsageError as error:
            command = f"ksc {error.ctx.info_name}" if error.ctx and error.ctx.parent else "ksc"
            _fail(f"{error.format_message()} (see '{command} --help')", status=2)
        except KscError as error:
            _fail(str(error))
        except OSError as error:
            where = f"{error.filename}: " if error.filename else ""
            _fail(f"{where}{error.strerror or error}")
        except MemoryError:
            _fail("out of memory (try a lower --resolution)")
        except ModuleNotFoundError as error:
            if error.name not in ENCODE_EXTRA:
                raise
            _fail(f"this command needs {error.name}, which the 'encode' extra installs: pip install 'ksc[encode]'")


def _fail(message: str, status: int = 1):
    click.echo(f"ksc: error: {message}", err=True)
    raise SystemExit(status)


@click.group(cls=KscGroup)
@click.version_option(__version__, prog_name="ksc")
def main():
    """ksc: compress triangle meshes into tiny neural .ksc files."""
    keep_openmp_workers_spinning()  # the commands import torch after this


def _read_bytes(path: str) -> bytes:
    from ksc.format import read_file

    return read_file(path)


@main.command()
@click.argument("input_path", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUT", type=click.Path(dir_okay=False, writable=True))
@click.option("--spheres", default=DEFAULTS.model.spheres, show_default=True, help="Number of key spheres (M).")
@click.option("--layers", default=DEFAULTS.model.layers, show_default=True, help="Hidden layers of the SDF network (K).")
@click.option("--width", type=int, default=None, help="Units per hidden layer (Q); default: the preset's.")
@click.option(
    "--frequencies",
    default=DEFAULTS.model.frequencies,
    show_default=True,
    help="Octaves of Fourier features of the query point (0: the paper's network).",
)
@click.option(
    "--features",
    type=click.Choice(FEATURE_BRANCHES),
    default=DEFAULTS.model.features,
    show_default=True,
    help="Sphere features: direct (DPFE, one 4->E layer) or latent (LPFE, a trained E-vector per sphere).",
)
@click.option(
    "--feature-dim",
    default=DEFAULTS.model.feature_dim,
    show_default=True,
    help="E, values per sphere feature (the paper's 29).",
)
@click.option("--activation", type=click.Choice(ACTIVATION_NAMES), default=DEFAULTS.model.activation, show_default=True)
@click.option("--steps", default=DEFAULTS.train.steps, show_default=True, help="Training steps.")
@click.option(
    "--time-budget",
    type=float,
    default=None,
    help="Stop the float training after this many seconds (not reproducible); fine-tuning follows.",
)
@click.option("--batch-size", default=DEFAULTS.train.batch_size, show_default=True)
@click.option("--lr", "learning_rate", default=DEFAULTS.train.learning_rate, show_default=True, help="Peak learning rate.")
@click.option("--samples", default=DEFAULTS.samples, show_default=True, help="Training points with their SDF.")
@click.option(
    "--distance",
    type=click.Choice(DISTANCES),
    default=DEFAULTS.distance,
    show_default=True,
    help="Training distances: exact (libigl AABB tree) or pysdf (faster, approximate: worse fits on thin meshes).",
)
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    default="default",
    show_default=True,
    help="Rate point: "
    + ", ".join(f"{name} {p.weight_bits}-bit width {p.width} ({p.typical_size})" for name, p in PRESETS.items())
    + ".",
)
@click.option("--bits", type=int, default=None, help="Bits per quantized weight (2-16); overrides --preset.")
@click.option(
    "--max-bytes",
    type=click.IntRange(min=1),
    default=None,
    help="Never write more bytes: narrows the network to fit at 8 bits (unless --width is given),"
    " then keeps the most bits per weight that fit.",
)
@click.option(
    "--qat-steps", default=DEFAULTS.qat_steps, show_default=True, help="Quantization-aware fine-tuning steps (0: none)."
)
@click.option("--seed", default=DEFAULTS.seed, show_default=True)
@device_option
@verbosity_options
def encode(
    input_path,
    output_path,
    spheres,
    layers,
    width,
    frequencies,
    features,
    feature_dim,
    activation,
    steps,
    time_budget,
    batch_size,
    learning_rate,
    samples,
    distance,
    preset,
    bits,
    max_bytes,
    qat_steps,
    seed,
    device,
    quiet,
):
    """Encode the mesh IN (.obj .ply .stl .off .glb) into the .ksc file OUT."""
    from ksc.config import ModelConfig, TrainConfig
    from ksc.meshio import load_mesh, mesh_bytes, write_atomic

    mesh = load_mesh(input_path)  # a bad input fails before torch is imported
    from ksc.device import resolve_device
    from ksc.encoder import encode_mesh, fit_width_to_budget

    rate = PRESETS[preset]
    options = EncodeOptions(
        model=ModelConfig(
            features=features,
            spheres=spheres,
            layers=layers,
            width=width if width is not None else rate.width,
            frequencies=frequencies,
            feature_dim=feature_dim,
            activation=activation,
        ),
        train=TrainConfig(
            steps=steps,
            batch_size=batch_size,
            learning_rate=learning_rate,
            time_budget=time_budget,
        ),
        samples=samples,
        distance=distance,
        weight_bits=bits if bits is not None else rate.weight_bits,
        qat_steps=qat_steps,
        seed=seed,
    )
    if max_bytes is not None and width is None:
        options = fit_width_to_budget(options, max_bytes)
    progress = ProgressBar(total=steps, desc="training", unit="step", disabled=quiet)
    with progress:
        result = encode_mesh(mesh, options, resolve_device(device), progress.on_step, max_bytes=max_bytes)
    write_atomic(output_path, result.data)
    if not quiet:
        size = len(result.data)
        input_size = Path(input_path).stat().st_size
        ply_size = len(mesh_bytes(mesh, ".ply"))
        click.echo(
            f"{input_path} -> {output_path}: {size} bytes; ratio {input_size / size:.1f}x vs input ({input_size} bytes),"
            f" {ply_size / size:.1f}x vs binary PLY ({ply_size} bytes); {result.spheres} spheres,"
            f" {result.stored_parameters} parameters at {result.weight_bits} bits, {result.seconds:.1f} s"
        )


@main.command()
@click.argument("input_path", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUT", type=click.Path(dir_okay=False, writable=True))
@click.option(
    "--resolution",
    default=DEFAULT_RESOLUTION,
    show_default=True,
    help=f"Grid nodes per axis for marching cubes ({MIN_RESOLUTION}-{MAX_RESOLUTION}).",
)
@click.option(
    "--faces",
    type=click.IntRange(min=0),
    default=None,
    help="Faces of the output mesh (default: twice the source mesh's, as the file records it; 0: the raw marching-cubes mesh).",
)
@click.option("--dense", is_flag=True, help="Evaluate every grid node (slow reference path) instead of the narrow band.")
@verbosity_options
def decode(input_path, output_path, resolution, faces, dense, quiet):
    """Decode the .ksc file IN into a mesh OUT (.ply .obj .stl .glb .off, by extension), with the field's normals.

    Runs in numpy: decoding never imports torch.
    """
    from ksc.decoder import decode as decode_bytes
    from ksc.meshio import check_output_format, serialize, write_atomic

    start = time.monotonic()
    suffix = check_output_format(output_path)  # fail on a bad extension before the slow part
    decoded = decode_bytes(_read_bytes(input_path), resolution, faces=faces, dense=dense)
    write_atomic(output_path, serialize(decoded.vertices, decoded.faces, decoded.normals, suffix))
    if not quiet:
        raw = len(decoded.extraction.faces)
        made = f", decimated from {raw}" if raw != len(decoded.faces) else ""
        click.echo(
            f"{input_path} -> {output_path}: {len(decoded.vertices)} vertices, {len(decoded.faces)} faces{made}"
            f" at resolution {resolution}, {time.monotonic() - start:.2f} s"
        )


@main.command()
@click.argument("input_path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def info(input_path, as_json):
    """Show what is inside a .ksc FILE."""
    from ksc.format import read_container

    report = describe_container(read_container(_read_bytes(input_path)))
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(_format_report(report))


@main.command()
@click.argument("paths", metavar="FILE...", nargs=-1, required=True, type=click.Path(dir_okay=False))
@verbosity_options
def verify(paths, quiet):
    """Check .ksc FILEs: checksum, header, limits, tensor shapes, and that the network runs.

    Prints one line per file; exits with status 1 if any file fails.
    """
    from ksc.decoder import verify as verify_bytes

    failed = 0
    for path in paths:
        try:
            decoded = verify_bytes(_read_bytes(path))
        except (KscError, OSError) as error:
            failed += 1
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            click.echo(f"ksc: error: {path}: {reason}", err=True)
            continue
        if not quiet:
            container = decoded.container
            click.echo(
                f"{path}: ok (format {container.version[0]}.{container.version[1]}, {container.sizes['file']} bytes,"
                f" {decoded.config.spheres} spheres, {sum(math.prod(r.shape) for r in container.tensors)} stored values)"
            )
    if failed:
        raise SystemExit(1)


@main.command()
@click.argument("reference", type=click.Path(dir_okay=False))
@click.argument("candidate", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def compare(reference, candidate, as_json):
    """Chamfer-L1, Hausdorff, IoU, p99 distance and normal error of CANDIDATE against REFERENCE (see ksc.metrics)."""
    from ksc.meshio import load_mesh
    from ksc.metrics import compare_meshes

    error = compare_meshes(load_mesh(reference), load_mesh(candidate))
    if as_json:
        click.echo(json.dumps(error.to_dict()))
    else:
        click.echo(
            f"chamfer_l1 {error.chamfer_l1:.6f}  hausdorff {error.hausdorff:.6f}  iou {error.iou:.5f}"
            f"  p99 {error.p99:.6f}  normal_error {error.normal_error:.3f} deg"
        )


def _format_report(report: dict, indent: str = "") -> str:
    lines = []
    for key, value in report.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines.append(_format_report(value, indent + "  "))
        else:
            lines.append(f"{indent}{key}: {value}")
    return "\n".join(lines)
