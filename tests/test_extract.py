from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh

from ksc.config import ModelConfig
from ksc.errors import KscError
from ksc.extract import evaluate_grid, extract_mesh, extract_surface
from ksc.format import VERSION
from ksc.model import KeySphereNet

from .conftest import assert_same_mesh

GOLDEN = Path(__file__).resolve().parent / "golden" / "v{}.{}".format(*VERSION) / "torus.ksc"  # the network ksc writes today
CPU = torch.device("cpu")


class Ball(torch.nn.Module):
    """Exact SDF of a ball of radius 0.6 (positive inside)."""

    def forward(self, points):
        return 0.6 - points.norm(dim=1)


def test_grid_values_match_direct_evaluation_whatever_the_chunk():
    model = KeySphereNet(ModelConfig(spheres=3, layers=2, width=8), torch.rand(3, 4)).eval()
    small = evaluate_grid(model, 9, 1.05, torch.device("cpu"), chunk=7).values
    large = evaluate_grid(model, 9, 1.05, torch.device("cpu"), chunk=10_000).values
    assert np.allclose(small, large, atol=1e-6)
    axis = np.linspace(-1.05, 1.05, 9)
    point = torch.tensor([[axis[2], axis[5], axis[7]]], dtype=torch.float32)
    with torch.no_grad():
        assert small[2, 5, 7] == pytest.approx(float(model(point)), abs=1e-5)


def test_marching_cubes_finds_the_ball_with_outward_faces():
    values = evaluate_grid(Ball(), 64, 1.05, torch.device("cpu")).values
    vertices, faces = extract_surface(values, 1.05)
    radii = np.linalg.norm(vertices, axis=1)
    assert np.allclose(radii, 0.6, atol=0.01)
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces)
    assert mesh.is_watertight and mesh.volume > 0  # positive volume = outward normals
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 0.6**3, rel=0.02)


class Constant(torch.nn.Module):
    def forward(self, points):
        return torch.ones(len(points))


def test_no_zero_crossing_is_an_error():
    with pytest.raises(KscError, match="no zero crossing"):
        extract_surface(np.ones((8, 8, 8), dtype=np.float32), 1.0)
    with pytest.raises(KscError, match="no zero crossing"):
        extract_mesh(Constant(), 32, 1.0, CPU, chunk=4096)


def golden_model():
    from ksc.decoder import load_model

    return load_model(GOLDEN.read_bytes()).model


@pytest.mark.parametrize(
    "resolution,slab_nodes",
    [(33, None), (64, None), (64, 64 * 64 * 4), (97, 97 * 97 * 12), (100, 100 * 100 * 8)],
    ids=["33", "64", "64-slabs-of-4", "97-slabs-of-12", "100-slabs-of-8"],
)
def test_coarse_to_fine_gives_the_dense_mesh_of_a_trained_network(resolution, slab_nodes):
    """Against one marching-cubes call on the fully evaluated grid; thin slabs force many seams."""
    model = golden_model()
    reference = extract_surface(evaluate_grid(model, resolution, 1.05, CPU).values, 1.05)
    kwargs = {"slab_nodes": slab_nodes} if slab_nodes else {}
    for dense in (False, True):
        result = extract_mesh(model, resolution, 1.05, CPU, dense=dense, **kwargs)
        assert_same_mesh(*reference, result.vertices, result.faces)
        assert trimesh.Trimesh(result.vertices, result.faces, process=False).is_watertight
        if resolution >= 64:
            assert (result.evaluations < resolution**3) != dense


def test_coarse_to_fine_on_an_exact_distance_skips_most_of_the_grid():
    result = extract_mesh(Ball(), 128, 1.05, CPU)
    assert result.evaluations < 0.15 * 128**3  # a band about 15 nodes thick: margin 2 on 4^3 leaf blocks
    assert result.active_blocks < 0.15 * result.total_blocks
    assert np.allclose(np.linalg.norm(result.vertices, axis=1), 0.6, atol=0.005)


class SteepRipples(torch.nn.Module):
    """A rippled ball whose value changes up to ~8 per unit length: the octree's margin of 2 is a bet it loses."""

    def forward(self, points):
        ripple = 0.08 * torch.sin(9 * points[:, 0]) * torch.sin(7 * points[:, 1])
        return 4.0 * (0.6 + ripple - points.norm(dim=1))


def test_coarse_to_fine_grows_the_band_where_the_margin_fails():
    model = SteepRipples()
    reference = extract_surface(evaluate_grid(model, 96, 1.05, CPU).values, 1.05)
    result = extract_mesh(model, 96, 1.05, CPU, slab_nodes=96 * 96 * 16)
    assert len(result.faces) == len(reference[1])
    assert_same_mesh(*reference, result.vertices, result.faces)
    assert result.evaluations < 96**3


def test_surface_touching_the_box_is_closed():
    class Slab(torch.nn.Module):  # inside wherever |z| < 0.5: meets four faces of the box
        def forward(self, points):
            return 0.5 - points[:, 2].abs()

    result = extract_mesh(Slab(), 40, 1.0, CPU, slab_nodes=40 * 40 * 8)
    assert trimesh.Trimesh(result.vertices, result.faces, process=False).is_watertight


def test_chunk_size_follows_free_memory(monkeypatch):
    from ksc import inference

    model, gpu = golden_model(), torch.device("cuda")  # only the device's type is read; free memory is faked
    monkeypatch.setattr(inference, "_free_memory", lambda device: 8 * 1024**3)
    large = inference.chunk_size(model, gpu)
    assert inference.chunk_size(model, CPU) == inference.CPU_CHUNK  # cache-sized on a CPU, whatever the memory
    monkeypatch.setattr(inference, "_free_memory", lambda device: 64 * 1024**2)
    small = inference.chunk_size(model, gpu)
    assert inference.MIN_CHUNK <= small < large <= inference.MAX_CHUNK
