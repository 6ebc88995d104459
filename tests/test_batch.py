"""``ksc batch``: a folder on a real Dask cluster, a bad file recorded, a rerun that skips, an external scheduler."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import trimesh

pytest.importorskip("distributed", reason="ksc batch needs the 'batch' extra (dask.distributed)")

from ksc.encoding.config import EncodeOptions, TrainConfig  # noqa: E402
from ksc.models.config import ModelConfig
from ksc.tools.batch import MANIFEST_CSV, MANIFEST_JSON, EncodeJob, run_batch  # noqa: E402

OPTIONS = EncodeOptions(
    model=ModelConfig(spheres=16, layers=3, width=16), train=TrainConfig(steps=150), samples=20_000, qat_steps=20
)


def make_folder(root: Path) -> Path:
    """Two small meshes (one in a subfolder) and a degenerate one."""
    folder = root / "in"
    (folder / "sub").mkdir(parents=True)
    trimesh.creation.torus(major_radius=1.0, minor_radius=0.35, major_sections=32, minor_sections=16).export(folder / "torus.ply")
    trimesh.creation.icosphere(subdivisions=3).export(folder / "sub" / "ball.obj")
    (folder / "sub" / "flat.obj").write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")
    (folder / "notes.txt").write_text("not a mesh")
    return folder


def single_encode(path: Path) -> bytes:
    """What ``ksc encode --threads 1`` with the same options writes."""
    from ksc.encoding.pipeline import encode_mesh
    from ksc.mesh.io import load_mesh

    return encode_mesh(load_mesh(path), OPTIONS, threads=1).data


def manifest(out: Path) -> dict[str, dict]:
    with open(out / MANIFEST_CSV, newline="") as handle:
        return {row["input"]: row for row in csv.DictReader(handle)}


def test_a_folder_on_a_local_cluster_then_a_rerun_that_skips(tmp_path):
    source, out = make_folder(tmp_path), tmp_path / "out"
    job = EncodeJob(options=OPTIONS)
    report = run_batch(source, out, job, workers=2)
    assert [row["input"] for row in report.rows] == ["sub/ball.obj", "sub/flat.obj", "torus.ply"]
    rows = manifest(out)
    assert rows["torus.ply"]["status"] == "ok" and rows["sub/ball.obj"]["status"] == "ok"
    assert rows["sub/flat.obj"]["status"] == "failed" and "zero surface area" in rows["sub/flat.obj"]["error"]
    assert not (out / "sub" / "flat.ksc").exists()
    for name, output in (("torus.ply", "torus.ksc"), ("sub/ball.obj", "sub/ball.ksc")):
        data = (out / output).read_bytes()
        assert data == single_encode(source / name)  # the same bytes as one encode with one torch thread
        assert int(rows[name]["ksc_bytes"]) == len(data)
        assert float(rows[name]["ratio"]) == pytest.approx((source / name).stat().st_size / len(data), rel=0.01)
    assert len(report.tasks) == 3 and all(t["started"] <= t["finished"] for t in report.tasks)
    summary = json.loads((out / MANIFEST_JSON).read_text())
    assert summary["counts"] == {"ok": 2, "skipped": 0, "failed": 1}

    started = time.monotonic()
    again = run_batch(source, out, job, workers=2)
    statuses = {row["input"]: row["status"] for row in again.rows}
    assert statuses == {"sub/ball.obj": "skipped", "sub/flat.obj": "failed", "torus.ply": "skipped"}
    assert time.monotonic() - started < report.seconds  # only the failed file ran again
    assert [t["input"] for t in again.tasks] == ["sub/flat.obj"]

    (out / "torus.ksc").write_bytes((out / "torus.ksc").read_bytes()[:-9])  # a truncated output is made again
    other = replace(job, options=replace(OPTIONS, seed=1))  # other options: every file is made again
    assert {r["input"]: r["status"] for r in run_batch(source, out, job, workers=1).rows}["torus.ply"] == "ok"
    assert {r["status"] for r in run_batch(source / "sub", out, other, workers=1).rows} == {"ok", "failed"}


def test_a_batch_killed_before_its_manifest_was_written_resumes_from_its_journal(tmp_path, monkeypatch):
    import ksc.tools.batch

    source, out = make_folder(tmp_path), tmp_path / "out"
    job = EncodeJob(options=OPTIONS)
    with monkeypatch.context() as patch:  # as if the client died after the tasks, before any manifest write
        patch.setattr(ksc.tools.batch, "_write_manifest", lambda *args, **kwargs: None)
        run_batch(source, out, job, workers=1)
    assert not (out / MANIFEST_JSON).exists()
    journal = [json.loads(line) for line in (out / ksc.tools.batch.JOURNAL).read_text().splitlines()]
    assert sorted(row["input"] for row in journal) == ["sub/ball.obj", "sub/flat.obj", "torus.ply"]
    again = run_batch(source, out, job, workers=1)
    assert {row["input"]: row["status"] for row in again.rows} == {
        "sub/ball.obj": "skipped",
        "sub/flat.obj": "failed",
        "torus.ply": "skipped",
    }
    assert not (out / ksc.tools.batch.JOURNAL).exists() and manifest(out)["torus.ply"]["status"] == "skipped"


def test_a_task_on_two_cores_writes_what_a_two_core_encode_writes(tmp_path):
    """A Dask worker is a daemonic process; its task forks the training's helper all the same."""
    from ksc.encoding.pipeline import encode_mesh
    from ksc.mesh.io import load_mesh

    source, out = make_folder(tmp_path), tmp_path / "out"
    report = run_batch(source / "sub", out, EncodeJob(options=OPTIONS, threads=2), workers=1)
    assert {row["input"]: row["status"] for row in report.rows} == {"ball.obj": "ok", "flat.obj": "failed"}
    assert (out / "ball.ksc").read_bytes() == encode_mesh(load_mesh(source / "sub" / "ball.obj"), OPTIONS, threads=2).data


QUICK_FLAGS = ["--spheres", "16", "--layers", "3", "--width", "16", "--steps", "150", "--samples", "20000", "--qat-steps", "20"]


def test_the_cli_batch_writes_what_a_one_core_encode_writes_and_reports_failures(tmp_path):
    import torch
    from click.testing import CliRunner

    from cli.main import main

    source = tmp_path / "in"
    source.mkdir()
    trimesh.creation.icosphere(subdivisions=3).export(source / "ball.obj")
    (source / "flat.obj").write_text("v 0 0 0\nv 1 0 0\nv 2 0 0\nf 1 2 3\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["batch", str(source), str(out), *QUICK_FLAGS, "--workers", "1", "-q"])
    assert result.exit_code == 1
    rows = manifest(out)
    assert rows["flat.obj"]["status"] == "failed" and rows["ball.obj"]["status"] == "ok"
    threads = torch.get_num_threads()
    try:
        single = tmp_path / "single.ksc"
        command = ["encode", str(source / "ball.obj"), str(single), *QUICK_FLAGS, "--threads", "1", "-q"]
        result = CliRunner().invoke(main, command)  # a batch task's one core
        assert result.exit_code == 0, result.output
    finally:
        torch.set_num_threads(threads)
    assert single.read_bytes() == (out / "ball.ksc").read_bytes()
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(main, ["batch", str(empty), str(out), "-q"])
    assert result.exit_code == 1 and "no mesh files" in result.output


def test_a_scheduler_and_two_workers_started_as_separate_processes(tmp_path):
    source, out = make_folder(tmp_path), tmp_path / "out"
    (source / "sub" / "flat.obj").unlink()
    address_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    processes = [subprocess.Popen([*dask, "--scheduler-file", str(address_file), "--port", "0", "--no-dashboard"])]
    try:
        for _ in range(600):
            if address_file.exists() and address_file.stat().st_size:
                break
            time.sleep(0.1)
        address = json.loads(address_file.read_text())["address"]
        worker = [sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1", "--no-dashboard"]
        processes += [subprocess.Popen(worker) for _ in range(2)]
        report = run_batch(source, out, EncodeJob(options=OPTIONS), scheduler=address)
        assert [row["status"] for row in report.rows] == ["ok", "ok"]
        assert (out / "torus.ksc").read_bytes() == single_encode(source / "torus.ply")
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


def test_local_workers_add_one_per_gpu_beside_the_cpu_ones():
    from ksc.tools.batch import local_workers

    assert local_workers(2, 1, None, 0, 10) == ["cpu", "cpu"]
    assert local_workers(2, 1, None, 0, 1) == ["cpu"]
    assert local_workers(4, 2, None, 0, 10) == ["cpu", "cpu"]
    assert local_workers(16, 1, None, 1, 100) == ["cpu"] * 15 + ["cuda:0"]
    assert local_workers(16, 1, 3, 2, 100) == ["cpu"] * 3 + ["cuda:0", "cuda:1"]
    assert local_workers(4, 1, None, 2, 1) == ["cuda:0"]  # one task: the GPU takes it


def test_a_worker_with_its_own_device_takes_tasks(tmp_path, monkeypatch):
    """The local cluster's extra (GPU) worker, here on a second name of the CPU so that it runs anywhere."""
    import ksc.tools.batch

    monkeypatch.setattr(ksc.tools.batch, "_cuda_devices", lambda: 1)
    monkeypatch.setattr(ksc.tools.batch, "local_workers", lambda *args: ["cpu", "cpu:0"])
    source, out = make_folder(tmp_path), tmp_path / "out"
    (source / "sub" / "flat.obj").unlink()
    trimesh.creation.capsule(height=1.0, radius=0.4).export(source / "capsule.ply")
    report = run_batch(source, out, EncodeJob(options=OPTIONS))
    assert {row["status"] for row in report.rows} == {"ok"}
    assert {row["device"] for row in report.rows} == {"cpu", "cpu:0"}  # both workers took tasks
    assert len({task["worker"] for task in report.tasks}) == 2
    assert (out / "torus.ksc").read_bytes() == single_encode(source / "torus.ply")
