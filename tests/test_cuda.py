"""CUDA paths; skipped on machines without a GPU (the CPU is the reference)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from ksc.decoder import decode_mesh, load_model
from ksc.encoder import encode_mesh
from ksc.extract import evaluate_grid
from ksc.format import VERSION
from ksc.metrics import compare_meshes

from .conftest import quick_options

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
GOLDEN = Path(__file__).resolve().parent / "golden" / "v{}.{}".format(*VERSION) / "torus.ksc"  # the network ksc writes today


def test_grid_on_cuda_matches_cpu():
    data = GOLDEN.read_bytes()
    cpu = evaluate_grid(load_model(data).model, 48, 1.05, torch.device("cpu")).values
    gpu = evaluate_grid(load_model(data, torch.device("cuda")).model, 48, 1.05, torch.device("cuda")).values
    assert np.allclose(cpu, gpu, atol=1e-4)


def test_decode_on_cuda_gives_the_cpu_mesh():
    data = GOLDEN.read_bytes()
    cpu, gpu = decode_mesh(data, 64), decode_mesh(data, 64, torch.device("cuda"))
    assert gpu.volume == pytest.approx(cpu.volume, rel=1e-3)
    assert compare_meshes(cpu, gpu).chamfer_l1 < 1e-3


def test_encode_on_cuda_decodes_on_cpu(torus):
    result = encode_mesh(torus, quick_options(), torch.device("cuda"))
    assert compare_meshes(torus, decode_mesh(result.data, 64)).iou > 0.9
