"""Helpers shared by the benchmark scripts: finding meshes, writing result tables."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MESHES = REPO_ROOT.parent / "shared" / "meshes"
MESH_FOLDERS = (SHARED_MESHES, SHARED_MESHES.parent / "meshes-wide")
"""Both mesh folders: a default is chosen on the two together."""
RESULTS = Path(__file__).resolve().parent / "results"
CORPUS = REPO_ROOT.parent / "shared" / "corpus"
"""The training corpus (its README: formats, licences); benchmarks measure on its meshes, never tune on them."""
CACHE = Path(__file__).resolve().parent / ".cache"
"""Encoded files kept between benchmark runs (git-ignored); delete it after changing the encoder."""

# A child reports its own peak resident memory: VmHWM belongs to the address space that exec
# created, whereas getrusage's ru_maxrss starts from the forking parent's (a large benchmark process).
_MEASURED_CHILD = """
import atexit, os, runpy, sys
def report_peak():
    with open("/proc/self/status") as status, open(os.environ["KSC_PEAK_FILE"], "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM")))
atexit.register(report_peak)
sys.argv = sys.argv[1:]
if sys.argv[0].endswith(".py"):
    runpy.run_path(sys.argv[0], run_name="__main__")
else:
    runpy.run_module(sys.argv[0], run_name="__main__")
"""


def run_measured(argv: list[str]) -> dict:
    """Run ``python SCRIPT_OR_MODULE ARGS...`` in a child process.

    Returns its exit ``status``, ``stdout``, ``stderr``, wall ``seconds``
    (interpreter start included) and ``peak_mib``, its peak resident memory.
    """
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        peak_file = Path(scratch) / "peak"
        env = {**os.environ, "KSC_PEAK_FILE": str(peak_file)}
        done = subprocess.run([sys.executable, "-c", _MEASURED_CHILD, *argv], capture_output=True, text=True, env=env)
        peak_kib = int(peak_file.read_text()) if peak_file.exists() else None
    return {
        "status": done.returncode,
        "stdout": done.stdout,
        "stderr": done.stderr,
        "seconds": time.monotonic() - start,
        "peak_mib": peak_kib / 1024 if peak_kib else None,
    }


@contextlib.contextmanager
def viewer_page(ksc_path: Path):
    """The address of ``ksc view``'s page showing ``ksc_path``, served on 127.0.0.1 while the block runs."""
    from ksc.tools.serve import make_server, page_url

    server = make_server(ksc_path)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield page_url(server)
    finally:
        server.shutdown()
        server.server_close()


def compile_ksc() -> None:
    """Byte-compile ksc's modules, as installing the package does: from a checkout (an editable install) under
    PYTHONDONTWRITEBYTECODE, every timed process would compile them from source (~50 ms a process here)."""
    import compileall
    import importlib

    for name in ("ksc", "ksc.format", "ksc.cli"):
        compileall.compile_dir(str(Path(importlib.import_module(name).__file__).parent), maxlevels=0, quiet=1)


def last_error_line(stderr: str, status: int) -> str:
    """What a failed child process said last (its exit status if it said nothing): a benchmark row's error."""
    return (stderr.strip().splitlines() or [f"exit {status}"])[-1]


def default_file(mesh_path: Path) -> Path | None:
    """The mesh's .ksc at default settings, encoded now if the cache lacks it (None if ksc refuses the mesh)."""
    from ksc.errors import KscError

    target = CACHE / "default" / f"{mesh_path.stem}.ksc"
    if not target.is_file():
        from ksc.encoding.pipeline import encode_mesh
        from ksc.mesh.io import load_mesh, write_atomic

        print(f"encoding {mesh_path.name} (default settings) into {target}", flush=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            write_atomic(target, encode_mesh(load_mesh(mesh_path)).data)
        except KscError as error:
            print(f"  {mesh_path.name}: ksc refuses it: {error}", flush=True)
            return None
    return target


def both_folders(only=None) -> list[Path]:
    """Every mesh of :data:`MESH_FOLDERS` (named in ``only``, if given), folder by folder, sorted."""
    return [path for folder in MESH_FOLDERS for path in shared_meshes(folder) if not only or path.name in only]


def default_files(folders, only=None):
    """``(folder, mesh path, .ksc path or None)`` for every mesh of ``folders`` (named in ``only``, if given),
    its default file from :func:`default_file` (None where ksc refuses the mesh)."""
    for folder in folders:
        for mesh_path in shared_meshes(folder):
            if not only or mesh_path.name in only:
                yield folder, mesh_path, default_file(mesh_path)


def folder_medians(rows: list[dict], keys, scored) -> list[dict]:
    """Per folder of ``rows`` and for all of them ("both"): the count of rows that ``scored(row)`` accepts and
    the median of each of ``keys`` over them."""
    import statistics

    summary = []
    for folder in [*dict.fromkeys(r["folder"] for r in rows), None]:
        members = [r for r in rows if (folder is None or r["folder"] == folder) and scored(r)]
        if members:
            medians = {key: statistics.median(r[key] for r in members) for key in keys}
            summary.append({"folder": folder or "both", "meshes": len(members), "members": members, **medians})
    return summary


def set_torch_threads(threads: int | None) -> None:
    """Give torch ``threads`` threads (None: leave its default); a process pool's initializer."""
    if threads:
        torch.set_num_threads(threads)


def add_parallel_options(parser, unit: str) -> None:
    """``--jobs`` (how many ``unit`` run at a time) and ``--threads`` (torch threads per job) for :func:`map_in_order`."""
    parser.add_argument("--jobs", type=int, default=1, help=f"{unit} run at a time, each in its own process.")
    parser.add_argument("--threads", type=int, default=None, help="Torch threads per job (default: torch's own).")


def map_in_order(function, arguments: list[tuple], jobs: int = 1, threads: int | None = None):
    """Yield ``function(*args)`` for each tuple of ``arguments``, in their order.

    With ``jobs`` > 1 the calls run in that many spawned processes, each with
    ``threads`` torch threads; ``function`` must then be importable (module level).
    """
    if jobs <= 1 or not arguments:
        yield from (function(*args) for args in arguments)
        return
    with ProcessPoolExecutor(jobs, get_context("spawn"), set_torch_threads, (threads,)) as pool:
        yield from pool.map(function, *zip(*arguments, strict=True))


def command_line() -> str:
    """How this benchmark was run, quoted so that it can be pasted back into a shell."""
    return "python " + shlex.join([f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def shared_meshes(folder: Path = SHARED_MESHES) -> list[Path]:
    """Every mesh of ``folder`` (default ../shared/meshes), sorted; exits with a clear message when it is absent."""
    if not folder.is_dir():
        raise SystemExit(f"benchmark data folder {folder} is absent: it must sit beside the repository (or pass --meshes)")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in {".obj", ".ply", ".stl", ".off", ".glb"})


def machine_description(device: torch.device) -> str:
    cpu = f"{_cpu_model()}, {platform.machine()}, {torch.get_num_threads()} torch threads"
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} ({cpu})"
    return f"CPU ({cpu})"


def _cpu_model() -> str:
    """The processor's name from /proc/cpuinfo ('unknown processor' elsewhere), so that tables say where they ran."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown processor"


def markdown_table(columns: list[tuple[str, str, str]], rows: list[dict]) -> str:
    """``columns`` are (key, heading, format spec); missing values print as '—'."""
    lines = ["| " + " | ".join(h for _, h, _ in columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = []
        for key, _, spec in columns:
            value = row.get(key)
            cells.append("—" if value is None else format(value, spec))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_name(base: str, suffix: str) -> str:
    """``base``, or ``base-suffix`` when a ``--suffix`` was given: the stem of a benchmark's result files."""
    return f"{base}-{suffix}" if suffix else base


def write_results(name: str, payload: dict, markdown: str, folder: Path = RESULTS) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path, md_path = folder / f"{name}.json", folder / f"{name}.md"
    json_path.write_text(json.dumps(payload, indent=2) + "\n")
    md_path.write_text(markdown + "\n")
    return json_path, md_path


VALIDATION_POINTS = 200_000
"""Fresh samples on which :func:`fitting_problem`'s trainings are scored."""


def fitting_problem(path: Path):
    """What an encode of ``path`` trains on, for benchmarks that score trainings without writing files.

    Returns a namespace: ``spheres`` (M, 4) tensor (rounded as stored), ``config`` (the default
    :class:`ksc.models.config.ModelConfig` with that many spheres), ``samples`` (the default mix, seed 0, as
    ``ksc encode`` draws them), ``check`` (:data:`VALIDATION_POINTS` fresh samples of the same mix,
    seed 1) and ``near`` (how many of ``check``'s first points are the near-surface kind, the one
    that decides the decoded surface).
    """
    from types import SimpleNamespace

    import numpy as np
    import trimesh

    from ksc.encoding.config import EncodeOptions
    from ksc.encoding.pipeline import DOMAIN_BOUND, quantized_key_spheres
    from ksc.encoding.sampling import SignedDistance, sample_counts, sample_sdf
    from ksc.mesh.io import consistently_wound, load_mesh
    from ksc.mesh.normalize import Transform
    from ksc.models.config import ModelConfig

    mesh, _ = consistently_wound(load_mesh(path))
    unit = trimesh.Trimesh(Transform.fit(mesh.vertices).to_unit(mesh.vertices), mesh.faces, process=False)
    oracle, options = SignedDistance(unit), EncodeOptions()
    spheres = torch.from_numpy(quantized_key_spheres(oracle, options.model.spheres)[0])
    share = options.sample_uniform_share()

    def draw(count: int, seed: int):
        return sample_sdf(unit, oracle, count, DOMAIN_BOUND, np.random.default_rng(seed), share, options.near_sigma)

    return SimpleNamespace(
        spheres=spheres,
        config=ModelConfig(**{**options.model.to_dict(), "spheres": len(spheres)}),
        samples=draw(options.samples, 0),
        check=draw(VALIDATION_POINTS, 1),
        near=sample_counts(VALIDATION_POINTS, share, options.near_sigma)[0][1],  # the near kind comes first
    )


def fit_and_score(problem, train, shift=None, check_shift=None) -> dict:
    """Train the default network of ``problem`` (:func:`fitting_problem`) as an encode does (seed 0, two slices)
    with ``train`` (a :class:`ksc.encoding.config.TrainConfig`); its mean absolute SDF error on ``problem.check``, all of it
    (``error``) and the near-surface kind (``near_error``), and the training's ``seconds``.

    ``shift`` (N,) is subtracted from the training targets and ``check_shift`` (V,) added to the predictions:
    a network that learns a correction to a known field.
    """
    from ksc.encoding.sampling import SdfSamples
    from ksc.encoding.train import fit
    from ksc.models.network import KeySphereNet

    samples = problem.samples if shift is None else SdfSamples(problem.samples.points, problem.samples.sdf - shift)
    torch.manual_seed(0)
    model = KeySphereNet(problem.config, problem.spheres)
    start = time.perf_counter()
    fit(model, samples, train, torch.Generator().manual_seed(0), torch.device("cpu"), parts=2)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        prediction = model(torch.from_numpy(problem.check.points))
    if check_shift is not None:
        prediction = prediction + check_shift
    error = (prediction - torch.from_numpy(problem.check.sdf)).abs()
    return {"error": float(error.mean()), "near_error": float(error[: problem.near].mean()), "seconds": seconds}


def open_corpus_meshes(count: int, accept, seed: int = 0) -> list[Path]:
    """``count`` open meshes of :data:`CORPUS` (2k-60k faces, ``MANIFEST.tsv`` says not watertight) that
    ``accept(mesh)`` takes, in an order drawn with ``seed``; fewer if the corpus has fewer."""
    import csv

    from ksc.mesh.io import load_mesh

    with open(CORPUS / "MANIFEST.tsv") as manifest:
        rows = [r for r in csv.DictReader(manifest, delimiter="\t") if r["kind"] == "mesh"]
    rows = [r for r in rows if r["watertight"] == "False" and 2000 <= int(r["faces"]) <= 60000]
    picked = []
    for index in np.random.default_rng(seed).permutation(len(rows)):
        path = CORPUS / rows[index]["file"]
        try:
            mesh = load_mesh(path)
        except Exception:  # a file ksc cannot read is no candidate
            continue
        if accept(mesh):
            picked.append(path)
        if len(picked) == count:
            break
    return picked


def write_table(name: str, title: str, note: str, columns: list[tuple[str, str, str]], rows: list[dict]) -> None:
    """Write ``rows`` as ``benchmarks/results/NAME.{json,md}``: the markdown under ``title``, with this machine,
    the command line and ``note`` above the table of ``columns`` (:func:`markdown_table`)."""
    machine = machine_description(torch.device("cpu"))
    heading = f"Machine: {machine}. Command: `{command_line().strip()}`. {note}"
    markdown = "\n".join([f"# {title}", "", heading, "", markdown_table(columns, rows)])
    write_results(name, {"machine": machine, "command": command_line(), "rows": rows}, markdown)
