from pathlib import Path

import numpy as np
import pytest
import trimesh

from ksc.decoding.extract import _crossed_cells, _nearest_within, evaluate_grid, extract_mesh, extract_surface
from ksc.decoding.pipeline import load_field
from ksc.errors import KscError
from ksc.format import VERSION

from .conftest import assert_same_mesh

GOLDEN = Path(__file__).resolve().parent / "golden" / "v{}.{}".format(*VERSION) / "torus.ksc"  # the network ksc writes today


def Ball(points):
    """Exact SDF of a ball of radius 0.6 (positive inside)."""
    return 0.6 - np.linalg.norm(points, axis=1)


def test_grid_values_match_direct_evaluation_whatever_the_chunk():
    field = golden_field()
    small = evaluate_grid(field, 9, 1.05, chunk=7).values
    large = evaluate_grid(field, 9, 1.05, chunk=10_000).values
    assert np.allclose(small, large, atol=1e-6)
    axis = np.linspace(-1.05, 1.05, 9)
    point = np.array([[axis[2], axis[5], axis[7]]], dtype=np.float32)
    assert small[2, 5, 7] == pytest.approx(float(field(point)[0]), abs=1e-5)


def test_marching_cubes_finds_the_ball_with_outward_faces():
    values = evaluate_grid(Ball, 64, 1.05).values
    vertices, faces = extract_surface(values, 1.05)
    radii = np.linalg.norm(vertices, axis=1)
    assert np.allclose(radii, 0.6, atol=0.01)
    import trimesh

    mesh = trimesh.Trimesh(vertices, faces)
    assert mesh.is_watertight and mesh.volume > 0  # positive volume = outward normals
    assert mesh.volume == pytest.approx(4 / 3 * np.pi * 0.6**3, rel=0.02)


def Constant(points):
    return np.ones(len(points), np.float32)


def test_the_crossed_cells_mask_leaves_marching_cubes_mesh_unchanged():
    """skimage reads the mask at a cell's highest corner: if that convention changed, the mask would drop faces."""
    from skimage.measure import marching_cubes

    axis = np.linspace(-1.0, 1.0, 41)
    x, y, z = np.meshgrid(axis, axis[:37], axis[:33], indexing="ij")  # unequal sides catch a transposed mask
    wavy = (0.5 - np.sqrt(x**2 + 2 * y**2 + z**2) + 0.08 * np.sin(9 * x) * np.cos(7 * z)).astype(np.float32)
    mask = _crossed_cells(wavy)
    assert mask.mean() < 0.5  # it does skip cells
    plain = marching_cubes(wavy, level=0.0)
    masked = marching_cubes(wavy, level=0.0, mask=mask)
    assert len(plain[1]) > 1000
    assert np.array_equal(plain[0], masked[0]) and np.array_equal(plain[1], masked[1])


def test_no_zero_crossing_is_an_error():
    with pytest.raises(KscError, match="no zero crossing"):
        extract_surface(np.ones((8, 8, 8), dtype=np.float32), 1.0)
    with pytest.raises(KscError, match="no zero crossing"):
        extract_mesh(Constant, 32, 1.0)


def golden_field():
    return load_field(GOLDEN.read_bytes()).field


@pytest.mark.parametrize(
    "resolution,slab_nodes",
    [(33, None), (64, None), (64, 64 * 64 * 4), (97, 97 * 97 * 12), (100, 100 * 100 * 8)],
    ids=["33", "64", "64-slabs-of-4", "97-slabs-of-12", "100-slabs-of-8"],
)
def test_coarse_to_fine_gives_the_dense_mesh_of_a_trained_network(resolution, slab_nodes):
    """Against one marching-cubes call on the fully evaluated grid; thin slabs force many seams."""
    field = golden_field()
    reference = extract_surface(evaluate_grid(field, resolution, 1.05).values, 1.05)
    kwargs = {"slab_nodes": slab_nodes} if slab_nodes else {}
    for dense in (False, True):
        result = extract_mesh(field, resolution, 1.05, dense=dense, **kwargs)
        assert_same_mesh(*reference, result.vertices, result.faces)
        assert trimesh.Trimesh(result.vertices, result.faces, process=False).is_watertight
        if resolution >= 64:
            assert (result.evaluations < resolution**3) != dense


def test_coarse_to_fine_on_an_exact_distance_skips_most_of_the_grid():
    result = extract_mesh(Ball, 128, 1.05)
    assert result.evaluations < 0.08 * 128**3  # a band about 8 nodes thick: margin 1 on 4^3 leaf blocks
    assert result.active_blocks < 0.08 * result.total_blocks
    assert np.allclose(np.linalg.norm(result.vertices, axis=1), 0.6, atol=0.005)


def SteepRipples(points):
    """A rippled ball whose value changes up to ~8 per unit length: the octree's margin of 1 is a bet it loses."""
    ripple = 0.08 * np.sin(9 * points[:, 0]) * np.sin(7 * points[:, 1])
    return 4.0 * (0.6 + ripple - np.linalg.norm(points, axis=1))


def test_coarse_to_fine_grows_the_band_where_the_margin_fails():
    reference = extract_surface(evaluate_grid(SteepRipples, 96, 1.05).values, 1.05)
    result = extract_mesh(SteepRipples, 96, 1.05, slab_nodes=96 * 96 * 16)
    assert len(result.faces) == len(reference[1])
    assert_same_mesh(*reference, result.vertices, result.faces)
    assert result.evaluations < 96**3


def test_surface_touching_the_box_is_closed():
    def slab(points):  # inside wherever |z| < 0.5: meets four faces of the box
        return 0.5 - np.abs(points[:, 2])

    result = extract_mesh(slab, 40, 1.0, slab_nodes=40 * 40 * 8)
    assert trimesh.Trimesh(result.vertices, result.faces, process=False).is_watertight


def test_seam_welding_finds_the_nearest_point_within_the_tolerance():
    rng = np.random.default_rng(0)
    reference = rng.uniform(0, 50, size=(500, 2))
    queries = np.concatenate([reference[::5] + rng.uniform(-3e-4, 3e-4, size=(100, 2)), reference[:20] + 0.5])
    distance, index = _nearest_within(reference, queries, 1e-3)
    assert np.array_equal(index[:100], np.arange(0, 500, 5)) and np.all(distance[:100] < 5e-4)
    assert np.all(index[100:] == -1) and np.all(np.isinf(distance[100:]))
    # A point in the next cell over is still found.
    distance, index = _nearest_within(np.array([[0.0099999, 0.0]]), np.array([[0.0100001, 0.0]]), 1e-3)
    assert index[0] == 0 and distance[0] < 1e-6
