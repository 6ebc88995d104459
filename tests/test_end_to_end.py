"""Encode -> file -> decode on a real mesh, checked against quality bounds and the dense decoder.

Few steps (3000, a quarter of the default) keep this under half a minute on
two cores; the bounds leave a margin below what that run reaches (IoU ~0.977,
Chamfer-L1 ~0.0037 when measured), so a broken stage fails it, noise does not.
"""

import numpy as np
import pytest

from ksc.config import EncodeOptions, TrainConfig
from ksc.decoder import decode_mesh
from ksc.encoder import encode_mesh
from ksc.meshio import load_mesh
from ksc.metrics import compare_meshes

from .conftest import shared_mesh


@pytest.mark.slow
def test_spot_round_trip_quality():
    mesh = load_mesh(shared_mesh("spot.obj"))
    result = encode_mesh(mesh, EncodeOptions(train=TrainConfig(steps=3000), samples=300_000))
    assert result.stored_parameters == 7026
    assert len(result.data) <= 12 * 1024
    decoded = decode_mesh(result.data, 128)
    error = compare_meshes(mesh, decoded)
    assert error.iou >= 0.95
    assert error.chamfer_l1 <= 0.01
    # The narrow-band decoder (default) finds exactly the mesh of the dense grid.
    dense = decode_mesh(result.data, 128, dense=True)
    assert np.array_equal(decoded.faces, dense.faces)
    assert np.allclose(decoded.vertices, dense.vertices)
