"""Encode -> file -> decode on a real mesh, checked against quality bounds and the dense decoder.

Few steps (3000, a third of the default) keep this under half a minute on
two cores; the bounds leave a margin below what that run reaches (IoU ~0.977,
Chamfer-L1 ~0.0037 when measured), so a broken stage fails it, noise does not.
"""

import pytest

from ksc.decoding.pipeline import decode_mesh
from ksc.encoding.config import EncodeOptions, TrainConfig
from ksc.encoding.pipeline import encode_mesh
from ksc.mesh.io import load_mesh
from ksc.mesh.metrics import compare_meshes

from .conftest import assert_same_mesh, shared_mesh


@pytest.mark.slow
def test_spot_round_trip_quality():
    mesh = load_mesh(shared_mesh("spot.obj"))
    result = encode_mesh(mesh, EncodeOptions(train=TrainConfig(steps=3000), samples=300_000, qat_steps=400))
    assert result.stored_parameters == 6723  # 64 spheres, 5 x 34, 6 Fourier octaves, 8 sphere features (the paper: 7026)
    assert len(result.data) <= 12 * 1024
    decoded = decode_mesh(result.data, 128, faces=0)
    error = compare_meshes(mesh, decoded)
    assert error.iou >= 0.95
    assert error.chamfer_l1 <= 0.01
    # The coarse-to-fine decoder (default) finds the mesh of the dense grid.
    dense = decode_mesh(result.data, 128, faces=0, dense=True)
    assert_same_mesh(dense.vertices, dense.faces, decoded.vertices, decoded.faces, atol=1e-5 * mesh.scale)
    assert decoded.is_watertight
