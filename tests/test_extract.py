import numpy as np
import pytest
import torch

from ksc.config import ModelConfig
from ksc.errors import KscError
from ksc.extract import evaluate_grid, extract_surface
from ksc.model import KeySphereNet


class Ball(torch.nn.Module):
    """Exact SDF of a ball of radius 0.6 (positive inside)."""

    def forward(self, points):
        return 0.6 - points.norm(dim=1)


def test_grid_values_match_direct_evaluation_whatever_the_chunk():
    model = KeySphereNet(ModelConfig(spheres=3, layers=2, width=8), torch.rand(3, 4)).eval()
    small = evaluate_grid(model, 9, 1.05, torch.device("cpu"), chunk=7)
    large = evaluate_grid(model, 9, 1.05, torch.device("cpu"), chunk=10_000)
    assert np.allclose(small, large, atol=1e-6)
    axis = np.linspace(-1.05, 1.05, 9)
    point = torch.tensor([[axis[2], axis[5], axis[7]]], dtype=torch.float32)
    with torch.no_grad():
        assert small[2, 5, 7] == pytest.approx(float(model(point)), abs=1e-5)


def test_marching_cubes_finds_the_ball_with_outward_faces():
    values = evaluate_grid(Ball(), 64, 1.05, torch.device("cpu"))
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
