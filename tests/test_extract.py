import numpy as np
import pytest
import torch

from ksc.config import ModelConfig
from ksc.errors import KscError
from ksc.extract import evaluate_grid, evaluate_narrow_band, extract_surface
from ksc.model import KeySphereNet


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


def test_no_zero_crossing_is_an_error():
    with pytest.raises(KscError, match="no zero crossing"):
        extract_surface(np.ones((8, 8, 8), dtype=np.float32), 1.0)


@pytest.mark.parametrize("resolution", [33, 64, 97])
def test_narrow_band_gives_the_dense_mesh_of_a_trained_network(resolution):
    from pathlib import Path

    from ksc.decoder import load_model

    golden = Path(__file__).resolve().parent / "golden" / "v1.0" / "torus.ksc"
    model = load_model(golden.read_bytes()).model
    dense = evaluate_grid(model, resolution, 1.05, torch.device("cpu"))
    band = evaluate_narrow_band(model, resolution, 1.05, torch.device("cpu"))
    if resolution >= 64:  # small grids fall back to dense evaluation
        assert band.evaluations < dense.evaluations
    dense_vertices, dense_faces = extract_surface(dense.values, 1.05)
    band_vertices, band_faces = extract_surface(band.values, 1.05)
    assert np.array_equal(dense_faces, band_faces)
    assert np.array_equal(dense_vertices, band_vertices)


def test_narrow_band_on_an_exact_distance_skips_most_of_the_grid():
    band = evaluate_narrow_band(Ball(), 128, 1.05, torch.device("cpu"))
    assert band.evaluations < 0.25 * 128**3
    vertices, _ = extract_surface(band.values, 1.05)
    assert np.allclose(np.linalg.norm(vertices, axis=1), 0.6, atol=0.005)
