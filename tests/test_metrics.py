import pytest
import trimesh

from ksc.mesh.metrics import compare_meshes


def test_identical_meshes_score_perfectly(sphere_mesh):
    error = compare_meshes(sphere_mesh, sphere_mesh.copy())
    assert error.chamfer_l1 < 1e-6 and error.hausdorff < 1e-6 and error.iou == 1.0


def test_concentric_balls_match_the_analytic_figures():
    a = trimesh.creation.icosphere(subdivisions=5, radius=1.0)
    b = trimesh.creation.icosphere(subdivisions=5, radius=0.9)
    error = compare_meshes(a, b)
    # Normalized frame = a's own (radius 1): every point of one surface is 0.1 from the other.
    assert error.iou == pytest.approx(0.9**3, abs=0.01)
    assert error.hausdorff == pytest.approx(0.1, abs=0.005)
    assert error.chamfer_l1 == pytest.approx(0.1, abs=0.005)


def test_metrics_are_deterministic(sphere_mesh):
    other = sphere_mesh.copy().apply_scale(1.05)
    assert compare_meshes(sphere_mesh, other) == compare_meshes(sphere_mesh, other)
