"""A folder of meshes -> a folder of ``.ksc`` files, on dask.distributed: resumable, one manifest line per file.

Every mesh under the input folder (recursively, the formats :func:`ksc.mesh.io.load_mesh` reads) becomes a
task that a Dask worker runs: read the mesh from the shared path, encode it with the batch's options, write
``OUT_DIR/<same relative path>.ksc`` atomically and, with ``measure``, score its default decode against the
input. The client appends each finished file's row to ``manifest.journal.jsonl`` at once (flushed to disk)
and rewrites ``manifest.csv`` and ``manifest.json`` every :data:`MANIFEST_EVERY` seconds and at the end, so
an interrupted batch loses no finished file and a batch of 10 000 files does not rewrite its manifest
10 000 times; a rerun skips each output that exists, passes :func:`ksc.decoding.pipeline.verify` and was made with the
same options (the manifest and the journal record their digest). A failing mesh (unreadable,
degenerate, a training that collapsed, a worker that died) is recorded with its one-line error; the others
go on.

The bytes of an encode depend on its training's core count and the device: a batch task trains on
``threads`` cores (default 1: the cluster's workers share the machine's cores instead), so
``ksc encode --threads 1 --device cpu`` reproduces a CPU worker's files byte for byte.
Where CUDA is present and the device is ``auto``, the local cluster adds one worker per GPU beside the CPU
workers (:func:`local_workers`); each worker's device comes from :data:`DEVICE_VARIABLE` in its
environment, and the manifest's ``device`` column says where each file was encoded.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ksc import __version__
from ksc.encoding.config import EncodeOptions
from ksc.errors import KscError, KscInputError
from ksc.mesh.io import MESH_INPUTS, write_atomic

log = logging.getLogger(__name__)

MANIFEST_CSV, MANIFEST_JSON, JOURNAL = "manifest.csv", "manifest.json", "manifest.journal.jsonl"
MANIFEST_EVERY = 10.0
"""Seconds between two rewrites of the manifest during a batch (each finished file is in the journal at once)."""
COLUMNS = (
    "input", "output", "status", "input_bytes", "ksc_bytes", "ratio", "seconds", "device", "chamfer_l1", "normal_error", "error"
)  # fmt: skip
"""The manifest's columns: paths relative to the input and output folders, status ``ok``, ``skipped`` or ``failed``."""
TIMING = ("input", "worker", "started", "finished")
DEVICE_VARIABLE = "KSC_BATCH_DEVICE"
"""A worker's environment variable naming the device its tasks train on when the batch's device is ``auto``
(``cpu``, ``cuda:0``); unset, ``auto`` picks CUDA where present (:func:`ksc.encoding.device.default_device`)."""


@dataclass(frozen=True)
class EncodeJob:
    """What every task of a batch does (sent to the workers, so plain data).

    ``max_bytes`` caps each file (with ``fit_width`` the network is first narrowed to fit, as
    ``ksc encode --max-bytes`` does without ``--width``); ``threads`` training cores per task (the
    task forks its training's helpers inside the worker, :class:`ksc.encoding.backprop.FusedTrainer`);
    ``measure`` adds Chamfer-L1 and normal error against the input; ``device`` as ``ksc encode --device``.
    """

    options: EncodeOptions = field(default_factory=EncodeOptions)
    max_bytes: int | None = None
    fit_width: bool = True
    threads: int = 1
    measure: bool = False
    device: str = "auto"

    def digest(self) -> str:
        """A digest of everything that shapes the bytes (options, byte cap, threads): equal digests, equal files."""
        record = {"options": asdict(self.options), "max_bytes": self.max_bytes, "fit_width": self.fit_width}
        record["threads"] = self.threads
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class BatchReport:
    """Rows of the manifest (dicts with :data:`COLUMNS`), in input order, and the batch's wall time.

    ``tasks`` holds, for each file encoded in this run, where and when it ran: ``input``, ``worker``
    (host:pid), ``started`` and ``finished`` (epoch seconds); ``began`` is when the run began (epoch).
    """

    rows: list[dict]
    seconds: float
    tasks: list[dict] = field(default_factory=list)
    began: float = 0.0

    def count(self, status: str) -> int:
        return sum(row["status"] == status for row in self.rows)


def find_meshes(folder: str | os.PathLike) -> list[Path]:
    """Every mesh file under ``folder`` (recursively), sorted; KscInputError if the folder is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KscInputError(f"{folder}: no such folder")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in MESH_INPUTS)


def encode_file(source: str, target: str, job: EncodeJob) -> dict:
    """Encode one mesh on a worker and write its file; never raises: the outcome is the returned row."""
    start = time.monotonic()
    row = {"status": "failed", "input_bytes": _size(source), "worker": f"{socket.gethostname()}:{os.getpid()}"}
    row["started"] = time.time()
    try:
        row.update(_encode(source, target, job))
        row["status"] = "ok"
    except (KscError, OSError) as error:
        message = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        row["error"] = _one_line(message.removeprefix(f"{source}: "))  # the manifest names the input
    except Exception as error:  # a crash in training must not end the batch: record it
        row["error"] = _one_line(f"{type(error).__name__}: {error}")
    row["seconds"] = round(time.monotonic() - start, 3)
    row["finished"] = time.time()
    return row


def _encode(source: str, target: str, job: EncodeJob) -> dict:
    from ksc.encoding.device import resolve_device
    from ksc.encoding.pipeline import encode
    from ksc.mesh.io import load_mesh

    device = resolve_device(os.environ.get(DEVICE_VARIABLE, "auto") if job.device == "auto" else job.device)
    mesh = load_mesh(source)
    data = encode(
        mesh, job.options, max_bytes=job.max_bytes, fit_width=job.fit_width, device=str(device), threads=job.threads
    ).data
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, data)
    row = {"ksc_bytes": len(data), "device": str(device)}
    if job.measure:
        from ksc.decoding.pipeline import decode_mesh
        from ksc.mesh.metrics import compare_meshes

        error = compare_meshes(mesh, decode_mesh(data))
        row.update(chamfer_l1=error.chamfer_l1, normal_error=error.normal_error)
    return row


def run_batch(
    in_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    job: EncodeJob | None = None,
    scheduler: str | None = None,
    workers: int | None = None,
    on_file: Callable[[dict], None] | None = None,
) -> BatchReport:
    """Encode every mesh under ``in_dir`` into ``out_dir``; see the module.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running Dask scheduler (``tcp://host:8786``); None starts a LocalCluster of
        ``workers`` processes (default: the usable cores divided by ``job.threads``) with one task each.
    on_file : callable, optional
        Called with each manifest row as its file is finished or skipped (progress bars).
    """
    job = job or EncodeJob()
    start, began = time.monotonic(), time.time()
    in_dir, out_dir = Path(in_dir), Path(out_dir)
    sources = find_meshes(in_dir)
    if not sources:
        raise KscInputError(f"{in_dir}: no mesh files ({', '.join(MESH_INPUTS)}) under it")
    out_dir.mkdir(parents=True, exist_ok=True)
    digest = job.digest()
    previous = _previous_rows(out_dir, digest)
    rows: dict[str, dict] = {}
    pending = []
    for source in sources:
        relative = source.relative_to(in_dir)
        base = {"input": relative.as_posix(), "output": relative.with_suffix(".ksc").as_posix()}
        skipped = _skip(out_dir / base["output"], previous.get(base["input"]))
        if skipped is not None:
            rows[base["input"]] = {**base, **skipped, "status": "skipped", "input_bytes": _size(source)}
            if on_file:
                on_file(rows[base["input"]])
        else:
            pending.append((source, base))
    order = [source.relative_to(in_dir).as_posix() for source in sources]

    def report() -> BatchReport:
        tasks = [{key: rows[name].get(key) for key in TIMING} for name in order if name in rows and "started" in rows[name]]
        complete = [_complete(rows[name]) for name in order if name in rows]
        return BatchReport(complete, time.monotonic() - start, tasks, began)

    written = time.monotonic()
    try:
        if pending:
            with open(out_dir / JOURNAL, "a", encoding="utf-8") as journal:
                for base, row in _run_tasks(pending, out_dir, job, scheduler, workers):
                    rows[base["input"]] = {**base, **row}
                    _append(journal, {"options_digest": digest, **_complete(rows[base["input"]])})
                    if time.monotonic() - written >= MANIFEST_EVERY:
                        _write_manifest(out_dir, report(), job, digest)
                        written = time.monotonic()
                    if on_file:
                        on_file(rows[base["input"]])
    finally:
        _write_manifest(out_dir, report(), job, digest, final=True)
    return report()


def _append(journal, row: dict) -> None:
    """One journal line, on disk before the next file is reported."""
    journal.write(json.dumps(row) + "\n")
    journal.flush()
    os.fsync(journal.fileno())


def _run_tasks(pending, out_dir: Path, job: EncodeJob, scheduler: str | None, workers: int | None):
    """Yield (base row, outcome row) as each task finishes, on the given scheduler or a LocalCluster."""
    from dask.distributed import Client, LocalCluster, as_completed

    logging.getLogger("distributed").setLevel(logging.ERROR)  # its INFO lines would drown the progress bar
    cluster = None
    if scheduler is None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        gpus = _cuda_devices() if job.device == "auto" else 0
        devices = local_workers(cores, job.threads, workers, gpus, len(pending))
        log.info("local Dask cluster: %s, one task and %d torch thread(s) each", _describe(devices), job.threads)
        cpu_workers = devices.count("cpu")
        cluster = LocalCluster(
            n_workers=cpu_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            env={DEVICE_VARIABLE: "cpu"} if gpus else None,
        )
        if cpu_workers < len(devices):  # a GPU worker: the CPU workers' spec with its own device
            options = cluster.new_spec["options"]
            for device in devices[cpu_workers:]:
                spec = {**cluster.new_spec, "options": {**options, "env": {DEVICE_VARIABLE: device}}}
                cluster.worker_spec[device.replace(":", "-")] = spec
            cluster.scale(len(cluster.worker_spec))
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            if cluster is not None:
                client.wait_for_workers(len(cluster.worker_spec))  # the GPU workers start after the others
            futures = {}
            # Largest inputs first (Dask runs a client's tasks in the order submitted): the long encodes
            # start early and the short ones fill the slots at the end, instead of one slot idling.
            for source, base in sorted(pending, key=lambda item: -(_size(item[0]) or 0)):
                target = out_dir / base["output"]
                future = client.submit(encode_file, str(source.resolve()), str(target.resolve()), job, pure=False)
                futures[future] = base
            for future in as_completed(futures):
                base = futures[future]
                try:
                    row = future.result()
                except Exception as error:  # the worker died (KilledWorker) or the task could not run
                    row = {"status": "failed", "error": _one_line(f"{type(error).__name__}: {error}")}
                yield base, row
    finally:
        if cluster is not None:
            cluster.close()


def local_workers(cores: int, threads: int, workers: int | None, gpus: int, tasks: int) -> list[str]:
    """The devices of a local cluster's workers, one task each: ``workers`` (default: the cores left after one
    per GPU, divided by ``threads``) on the CPU, then one per GPU (``cuda:0`` ...); never more than ``tasks``."""
    gpu_workers = [f"cuda:{k}" for k in range(min(gpus, tasks))]
    count = workers or max(1 if not gpu_workers else 0, (cores - len(gpu_workers)) // max(1, threads))
    return (["cpu"] * min(count, tasks - len(gpu_workers))) + gpu_workers


def _cuda_devices() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _describe(devices: list[str]) -> str:
    cpu = devices.count("cpu")
    gpu = len(devices) - cpu
    return f"{cpu} CPU worker(s)" + (f" and {gpu} GPU worker(s)" if gpu else "")


def _previous_rows(out_dir: Path, digest: str) -> dict[str, dict]:
    """The finished rows of earlier runs with the same options digest, by input path: the manifest's, then the
    journal's of a run that ended before rewriting it (later rows win; unreadable files or lines give none)."""
    rows = []
    try:
        manifest = json.loads((out_dir / MANIFEST_JSON).read_text())
        if manifest.get("options_digest") == digest:
            rows += list(manifest["files"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    try:
        lines = (out_dir / JOURNAL).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:  # a line cut short by the crash
            continue
        if isinstance(row, dict) and row.get("options_digest") == digest:
            rows.append(row)
    finished = {}
    for row in rows:
        if isinstance(row, dict) and isinstance(row.get("input"), str):
            if row.get("status") in ("ok", "skipped"):
                finished[row["input"]] = row
            else:
                finished.pop(row["input"], None)
    return finished


def _skip(target: Path, previous: dict | None) -> dict | None:
    """The row to keep for an output that needs no new encode, or None: it must exist, be the size the
    earlier run recorded and pass :func:`ksc.decoding.pipeline.verify`."""
    if previous is None or not target.is_file():
        return None
    from ksc.decoding.pipeline import verify

    try:
        data = target.read_bytes()
        if len(data) != previous.get("ksc_bytes"):
            return None
        verify(data)
    except (KscError, OSError):
        return None
    kept = {key: previous.get(key) for key in ("ksc_bytes", "device", "chamfer_l1", "normal_error")}
    return {**kept, "seconds": previous.get("seconds")}


def _complete(row: dict) -> dict:
    """A manifest row with every column, the ratio filled in."""
    row = {key: row.get(key) for key in COLUMNS}
    if row["ksc_bytes"] and row["input_bytes"]:
        row["ratio"] = round(row["input_bytes"] / row["ksc_bytes"], 2)
    return row


def _write_manifest(out_dir: Path, report: BatchReport, job: EncodeJob, digest: str, final: bool = False) -> None:
    """``manifest.csv`` and ``manifest.json`` from ``report``; the ``final`` write also removes the journal,
    whose rows the manifest now holds."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(report.rows)
    write_atomic(out_dir / MANIFEST_CSV, text.getvalue().encode())
    summary = {
        "ksc": __version__,
        "options": asdict(job.options),
        "max_bytes": job.max_bytes,
        "threads": job.threads,
        "options_digest": digest,
        "counts": {status: report.count(status) for status in ("ok", "skipped", "failed")},
        "seconds": round(report.seconds, 3),
        "files": report.rows,
    }
    write_atomic(out_dir / MANIFEST_JSON, (json.dumps(summary, indent=2) + "\n").encode())
    if final:
        (out_dir / JOURNAL).unlink(missing_ok=True)


def _size(path) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _one_line(message) -> str:
    return " ".join(str(message).split())
