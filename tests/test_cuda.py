"""CUDA paths; skipped on machines without a GPU (the CPU is the reference). Decoding is numpy only."""

import pytest
import torch

from ksc.decoding.pipeline import decode_mesh
from ksc.encoding.pipeline import encode_mesh
from ksc.mesh.metrics import compare_meshes

from .conftest import quick_options

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_encode_on_cuda_decodes_on_cpu(torus):
    result = encode_mesh(torus, quick_options(), torch.device("cuda"))
    assert compare_meshes(torus, decode_mesh(result.data, 64)).iou > 0.9


def test_a_batch_puts_a_gpu_worker_beside_the_cpu_ones(tmp_path):
    pytest.importorskip("distributed")
    import trimesh

    from ksc.tools.batch import EncodeJob, run_batch

    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(4):
        trimesh.creation.torus(major_radius=1.0, minor_radius=0.2 + 0.05 * k).export(folder / f"torus{k}.ply")
    report = run_batch(folder, tmp_path / "out", EncodeJob(options=quick_options()), workers=1)
    assert {row["status"] for row in report.rows} == {"ok"}
    assert "cuda:0" in {row["device"] for row in report.rows}
