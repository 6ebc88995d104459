"""Shared fixtures: analytic shapes, the shared reference meshes, quick encode options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import trimesh

from ksc.encoding.config import EncodeOptions, TrainConfig
from ksc.models.config import ModelConfig

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_MESHES = REPO_ROOT.parent / "shared" / "meshes"


def shared_mesh(name: str) -> Path:
    """Path of a mesh in ../shared/meshes, or skip the test with the reason."""
    path = SHARED_MESHES / name
    if not path.is_file():
        pytest.skip(f"reference mesh {path} is absent (the shared data folder is not beside the repo)")
    return path


def make_torus(offset: bool = True) -> trimesh.Trimesh:
    """A watertight torus; by default offset and scaled so normalization has work to do."""
    mesh = trimesh.creation.torus(major_radius=1.0, minor_radius=0.35, major_sections=48, minor_sections=24)
    if offset:
        mesh.apply_scale(3.0)
        mesh.apply_translation([10.0, -4.0, 2.5])
    return mesh


@pytest.fixture
def torus() -> trimesh.Trimesh:
    return make_torus()


@pytest.fixture
def sphere_mesh() -> trimesh.Trimesh:
    return trimesh.creation.icosphere(subdivisions=4, radius=0.8)


def quick_options(steps: int = 1000, seed: int = 0, **model) -> EncodeOptions:
    """Small, fast settings for tests that check plumbing rather than quality."""
    config = {"spheres": 32, "layers": 4, "width": 32, **model}
    return EncodeOptions(
        model=ModelConfig(**config),
        train=TrainConfig(steps=steps, batch_size=2048),
        samples=50_000,
        qat_steps=steps // 8,
        seed=seed,
    )


def assert_same_mesh(vertices_a, faces_a, vertices_b, faces_b, atol: float = 1e-5) -> None:
    """Same vertex and triangle counts, and every vertex and triangle centroid of each mesh within ``atol`` of the other's.

    (Marching cubes may emit coincident vertices where a node value is exactly
    zero, so a one-to-one vertex matching is not required.)
    """
    from scipy.spatial import cKDTree

    vertices_a, vertices_b = np.asarray(vertices_a), np.asarray(vertices_b)
    faces_a, faces_b = np.asarray(faces_a), np.asarray(faces_b)
    assert len(vertices_a) == len(vertices_b) and len(faces_a) == len(faces_b)
    for points_a, points_b in ((vertices_a, vertices_b), (vertices_a[faces_a].mean(1), vertices_b[faces_b].mean(1))):
        assert cKDTree(points_a).query(points_b)[0].max() <= atol
        assert cKDTree(points_b).query(points_a)[0].max() <= atol
