"""CUDA paths; skipped on machines without a GPU (the CPU is the reference). Decoding is numpy only."""

import pytest
import torch

from ksc.decoder import decode_mesh
from ksc.encoder import encode_mesh
from ksc.metrics import compare_meshes

from .conftest import quick_options

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def test_encode_on_cuda_decodes_on_cpu(torus):
    result = encode_mesh(torus, quick_options(), torch.device("cuda"))
    assert compare_meshes(torus, decode_mesh(result.data, 64)).iou > 0.9


def test_written_out_step_matches_autograd_on_cuda():
    from ksc.backprop import FusedTrainer
    from ksc.config import ModelConfig
    from ksc.model import KeySphereNet
    from ksc.train import sdf_loss

    generator = torch.Generator().manual_seed(0)
    model = KeySphereNet(ModelConfig(), torch.rand(64, 4, generator=generator) * 0.5).cuda()
    points = (torch.rand(4000, 3, generator=generator) * 2 - 1).cuda()
    target = (torch.rand(4000, generator=generator) - 0.5).cuda()
    index = torch.randint(4000, (1024,), generator=generator).cuda()
    sdf_loss(model(points[index]), target[index]).backward()
    trainer = FusedTrainer(model, points, target, 1024)
    trainer.step(index, 0.0)
    for (name, parameter), gradient in zip(model.named_parameters(), trainer.views(trainer.gradient).values(), strict=True):
        assert torch.allclose(gradient, parameter.grad, atol=1e-5 * float(parameter.grad.abs().max()), rtol=0), name


def test_a_batch_puts_a_gpu_worker_beside_the_cpu_ones(tmp_path):
    pytest.importorskip("distributed")
    import trimesh

    from ksc.batch import EncodeJob, run_batch

    folder = tmp_path / "in"
    folder.mkdir()
    for k in range(4):
        trimesh.creation.torus(major_radius=1.0, minor_radius=0.2 + 0.05 * k).export(folder / f"torus{k}.ply")
    report = run_batch(folder, tmp_path / "out", EncodeJob(options=quick_options()), workers=1)
    assert {row["status"] for row in report.rows} == {"ok"}
    assert "cuda:0" in {row["device"] for row in report.rows}
