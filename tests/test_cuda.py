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
