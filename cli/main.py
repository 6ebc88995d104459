"""The ``ksc`` command: thin click commands over the library.

Every user error (a bad file, a bad option) is printed as one line starting
with ``ksc: error:`` and exits with status 1; outputs are written atomically.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import click

from ksc import __version__
from ksc.decoding.config import DEFAULT_RESOLUTION, MAX_RESOLUTION, MIN_RESOLUTION
from ksc.encoding.threads import TRAINING_THREADS
from ksc.errors import KscError
from ksc.format.report import describe_container

from .options import device_option, encode_job, encode_options, verbosity_options
from .progress import ProgressBar

EXTRAS = {"torch": "encode", "igl": "encode", "dask": "batch", "distributed": "batch"}
"""Modules of the extras, by the extra that installs them: `encode` and `compare` need torch and libigl,
`batch` dask.distributed too; decoding needs none (pysdf, the `pysdf` extra, only the Python API's
``distance="pysdf"``)."""


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
            extra = EXTRAS.get((error.name or "").split(".")[0])
            if extra is None:
                raise
            _fail(f"this command needs {error.name}, which the '{extra}' extra installs: pip install 'ksc[{extra}]'")


def _fail(message: str, status: int = 1):
    click.echo(f"ksc: error: {message}", err=True)
    raise SystemExit(status)


@click.group(cls=KscGroup)
@click.version_option(__version__, prog_name="ksc")
def main():
    """ksc: compress triangle meshes into tiny neural .ksc files."""


def _read_bytes(path: str) -> bytes:
    from ksc.format import read_file

    return read_file(path)


@main.command()
@click.argument("input_path", metavar="IN", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUT", type=click.Path(dir_okay=False, writable=True))
@encode_options
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help=f"CPU cores for training, one process each; the bytes depend on it.  [default: {TRAINING_THREADS}, or 1 on one core]",
)
@device_option
@verbosity_options
def encode(input_path, output_path, threads, device, quiet, **settings):
    """Encode the mesh IN (.obj .ply .stl .off .glb) into the .ksc file OUT."""
    from ksc.mesh.io import load_mesh, mesh_bytes, write_atomic

    mesh = load_mesh(input_path)  # a bad input fails before torch is imported
    job = encode_job(settings)
    from ksc.encoding.pipeline import encode as encode_with_options

    progress = ProgressBar(total=job.options.train.steps, desc="training", unit="step", disabled=quiet)
    with progress:
        result = encode_with_options(
            mesh,
            job.options,
            max_bytes=job.max_bytes,
            fit_width=job.fit_width,
            device=device,
            threads=threads,
            on_step=progress.on_step,
        )
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
@click.argument("in_dir", metavar="IN_DIR", type=click.Path(file_okay=False))
@click.argument("out_dir", metavar="OUT_DIR", type=click.Path(file_okay=False, writable=True))
@encode_options
@click.option(
    "--scheduler",
    default=None,
    help="Address of a running Dask scheduler (tcp://host:8786); default: a local cluster on this machine.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="CPU workers of the local cluster (default: the cores not driving a GPU, divided by --threads).",
)
@click.option("--threads", type=click.IntRange(min=1), default=1, show_default=True, help="Training cores per task.")
@click.option("--measure", is_flag=True, help="Also score each file's decode against its input (Chamfer-L1, normal error).")
@device_option
@verbosity_options
def batch(in_dir, out_dir, scheduler, workers, threads, measure, device, quiet, **settings):
    """Encode every mesh under IN_DIR into OUT_DIR (same relative paths, .ksc) on Dask.

    Resumable: outputs that exist, verify and were made with the same options are skipped. Each file's
    outcome goes to OUT_DIR/manifest.csv and manifest.json; the exit status is 1 if any file failed.
    With --scheduler the workers read the inputs and write the outputs themselves: give paths they share.
    With --device auto on a machine with CUDA, the local cluster adds one worker per GPU beside the CPU
    workers; a worker of any cluster trains on the device its KSC_BATCH_DEVICE names (cpu, cuda:0), if set.
    """
    from dataclasses import replace

    from tqdm import tqdm

    from ksc.tools.batch import find_meshes, run_batch

    job = replace(encode_job(settings), threads=threads, measure=measure, device=device)
    with tqdm(desc="meshes", unit="mesh", disable=quiet, total=len(find_meshes(in_dir))) as bar:

        def on_file(row):
            bar.update(1)
            if row["status"] == "failed":
                bar.write(f"ksc: error: {row['input']}: {row.get('error')}", file=sys.stderr)

        report = run_batch(in_dir, out_dir, job, scheduler=scheduler, workers=workers, on_file=on_file)
    if not quiet:
        click.echo(
            f"{in_dir} -> {out_dir}: {report.count('ok')} encoded, {report.count('skipped')} skipped,"
            f" {report.count('failed')} failed in {report.seconds:.1f} s; manifest in {Path(out_dir) / 'manifest.csv'}"
        )
    if report.count("failed"):
        raise SystemExit(1)


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
    from ksc.decoding.pipeline import decode as decode_bytes
    from ksc.mesh.io import check_output_format, serialize, write_atomic

    start = time.monotonic()
    suffix = check_output_format(output_path)  # fail on a bad extension before the slow part
    decoded = decode_bytes(_read_bytes(input_path), resolution, faces=faces, dense=dense)
    write_atomic(output_path, serialize(decoded.vertices, decoded.faces, decoded.normals, suffix))
    if not quiet:
        raw = len(decoded.extraction.faces)
        made = f", from {raw} marching-cubes faces" if raw != len(decoded.faces) else ""
        used = round(2 * decoded.network.bound / decoded.extraction.spacing) + 1  # a sheet's may be finer than asked
        click.echo(
            f"{input_path} -> {output_path}: {len(decoded.vertices)} vertices, {len(decoded.faces)} faces{made}"
            f" at resolution {used}, {time.monotonic() - start:.2f} s"
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
    from ksc.decoding.pipeline import verify as verify_bytes

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
    """Chamfer-L1, Hausdorff, IoU, p99 distance and normal error of CANDIDATE against REFERENCE (see ksc.mesh.metrics)."""
    from ksc.mesh.io import load_mesh
    from ksc.mesh.metrics import compare_meshes

    error = compare_meshes(load_mesh(reference), load_mesh(candidate))
    if as_json:
        click.echo(json.dumps(error.to_dict()))
    else:
        click.echo(
            f"chamfer_l1 {error.chamfer_l1:.6f}  hausdorff {error.hausdorff:.6f}  iou {error.iou:.5f}"
            f"  p99 {error.p99:.6f}  normal_error {error.normal_error:.3f} deg"
        )


@main.command()
@click.argument("input_path", metavar="FILE", type=click.Path(dir_okay=False))
@click.option("--port", type=click.IntRange(0, 65535), default=0, help="Port on 127.0.0.1 (default: any free one).")
@click.option("--no-open", is_flag=True, help="Print the address without opening a browser.")
@verbosity_options
def view(input_path, port, no_open, quiet):
    """Open the .ksc FILE in a web page: serves the viewer and the file on 127.0.0.1 until Ctrl-C.

    The page decodes the file in the browser (WebGL2): drag to orbit, wheel to zoom, the key spheres on a switch.
    """
    import webbrowser

    from ksc.tools.serve import make_server, page_url

    server = make_server(input_path, port)
    url = page_url(server)
    click.echo(f"{input_path}: {url} (Ctrl-C stops)")
    if not no_open:
        webbrowser.open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    if not quiet:
        click.echo("stopped")


@main.command()
@click.argument("input_path", metavar="FILE", type=click.Path(dir_okay=False))
@click.argument("output_path", metavar="OUT.png", type=click.Path(dir_okay=False, writable=True))
@click.option("--size", type=click.IntRange(16, 4096), default=512, show_default=True, help="Width and height in pixels.")
@click.option("--spheres", is_flag=True, help="Show the key spheres inside a translucent surface.")
@verbosity_options
def preview(input_path, output_path, size, spheres, quiet):
    """A PNG picture of the shape the .ksc FILE decodes to, as the web viewer first shows it (no browser, no GPU)."""
    from ksc.mesh.io import write_atomic
    from ksc.tools.preview import png_bytes
    from ksc.tools.preview import preview as picture

    if not output_path.lower().endswith(".png"):
        raise click.UsageError(f"{output_path}: the picture is written as PNG; name it .png")
    write_atomic(output_path, png_bytes(picture(_read_bytes(input_path), size, spheres)))
    if not quiet:
        click.echo(f"{input_path} -> {output_path}: {size}x{size} PNG")


def _format_report(report: dict, indent: str = "") -> str:
    lines = []
    for key, value in report.items():
        if isinstance(value, dict):
            lines.append(f"{indent}{key}:")
            lines.append(_format_report(value, indent + "  "))
        else:
            lines.append(f"{indent}{key}: {value}")
    return "\n".join(lines)
