import numpy as np
import pytest
import trimesh

from ksc.encoding.config import LONG_TRAINING_STEPS, EncodeOptions, TrainConfig
from ksc.encoding.sampling import SAMPLE_MIX, SignedDistance, sample_sdf
from ksc.errors import KscInputError
from ksc.mesh.sampling import inside_by_winding_number, sample_surface, spatial_order


def test_signed_distance_is_positive_inside_a_sphere(sphere_mesh):
    signed_distance = SignedDistance(sphere_mesh)
    points = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.95, 0.0]])
    values = signed_distance(points)
    assert values[0] > 0.75 and values[1] > 0.25 and values[2] < 0.0
    assert np.allclose(values, 0.8 - np.linalg.norm(points, axis=1), atol=0.01)


def test_sample_mix_concentrates_near_the_surface(sphere_mesh):
    samples = sample_sdf(sphere_mesh, SignedDistance(sphere_mesh), 20_000, 1.05, np.random.default_rng(0))
    assert samples.points.shape == (20_000, 3) and samples.sdf.shape == (20_000,)
    assert np.abs(samples.points).max() <= 1.05
    near_share = SAMPLE_MIX[0][1]
    assert np.mean(np.abs(samples.sdf) < 0.015) >= near_share * 0.9


def test_uniform_share_moves_points_away_from_the_surface(sphere_mesh):
    signed_distance, rng = SignedDistance(sphere_mesh), np.random.default_rng(0)
    far = [np.mean(np.abs(sample_sdf(sphere_mesh, signed_distance, 20_000, 1.05, rng, share).sdf) > 0.15) for share in (0.1, 0.5)]
    assert far[1] > 3 * far[0]  # a point drawn near the surface is almost never 0.15 away


def test_surface_samples_lie_on_the_surface(sphere_mesh):
    points = sample_surface(sphere_mesh, 1000, np.random.default_rng(0))
    assert np.allclose(np.linalg.norm(points, axis=1), 0.8, atol=0.01)


def test_sign_on_an_open_mesh_is_repeatable_and_sensible(sphere_mesh):
    # A ball with a hole: ray-parity signs vary with the ray direction, winding numbers do not.
    open_ball = sphere_mesh.copy()
    open_ball.update_faces(np.arange(len(open_ball.faces)) >= 40)
    points = np.random.default_rng(0).uniform(-1.0, 1.0, size=(20_000, 3))
    first, second = SignedDistance(open_ball)(points), SignedDistance(open_ball)(points)
    assert np.array_equal(first, second)
    radius = np.linalg.norm(points, axis=1)
    clear = np.abs(radius - 0.8) > 0.1
    assert np.mean((first[clear] > 0) == (radius[clear] < 0.8)) > 0.99


def test_near_sigma_sets_the_spread_of_the_nearest_points(sphere_mesh):
    signed_distance = SignedDistance(sphere_mesh)
    near_count = int(round(20_000 * SAMPLE_MIX[0][1]))  # the near kind is drawn first
    spread = [
        np.median(
            np.abs(sample_sdf(sphere_mesh, signed_distance, 20_000, 1.05, np.random.default_rng(0), 0.25, sigma).sdf[:near_count])
        )
        for sigma in (0.002, 0.02)
    ]
    # |N(0, sigma^2)| along the normal has median 0.67 sigma.
    assert spread[0] == pytest.approx(0.67 * 0.002, rel=0.15) and spread[1] == pytest.approx(0.67 * 0.02, rel=0.15)


@pytest.mark.parametrize("sigma", [0.0, -0.01, 0.2])
def test_near_sigma_out_of_range_is_refused(sigma):
    with pytest.raises(KscInputError, match="near-surface sample spread"):
        EncodeOptions(near_sigma=sigma)


def test_default_uniform_share_follows_the_training_length():
    long_run, short_run = EncodeOptions(), EncodeOptions(train=TrainConfig(steps=LONG_TRAINING_STEPS - 1))
    assert long_run.sample_uniform_share() < short_run.sample_uniform_share()
    assert EncodeOptions(uniform_share=0.4, train=TrainConfig(steps=10)).sample_uniform_share() == 0.4


def _box_signed_distance(points: np.ndarray, half: float) -> np.ndarray:
    """Exact signed distance (positive inside) to the axis-aligned cube [-half, half]^3."""
    q = np.abs(points) - half
    return -(np.linalg.norm(np.maximum(q, 0.0), axis=1) + np.minimum(q.max(axis=1), 0.0))


def test_exact_distance_matches_a_cube_with_large_faces():
    # Twelve large triangles: distances near a face's middle are far from every vertex, where
    # the approximate backend (nearest-vertex neighbourhoods) goes wrong.
    cube = trimesh.creation.box(extents=(1.6, 1.6, 1.6))
    points = np.random.default_rng(0).uniform(-0.9, 0.9, size=(20_000, 3))
    truth = _box_signed_distance(points, 0.8)
    assert np.abs(SignedDistance(cube)(points) - truth).max() < 1e-5
    assert np.abs(SignedDistance(cube, "pysdf")(points) - truth).max() < 0.01


def test_unknown_distance_backend_is_rejected(sphere_mesh):
    with pytest.raises(ValueError, match="distance backend"):
        SignedDistance(sphere_mesh, "approximate")
    with pytest.raises(KscInputError, match="distance must be one of"):
        EncodeOptions(distance="approximate")


def test_spatial_order_is_a_permutation_that_keeps_neighbours_together():
    points = np.random.default_rng(0).uniform(-1, 1, (20_000, 3))
    order = spatial_order(points)
    assert np.array_equal(np.sort(order), np.arange(len(points)))
    step = np.linalg.norm(np.diff(points[order], axis=0), axis=1)
    random_step = np.linalg.norm(np.diff(points, axis=0), axis=1)
    assert np.median(step) < 0.2 * np.median(random_step)
    assert len(spatial_order(np.zeros((0, 3)))) == 0 and np.array_equal(spatial_order(np.ones((3, 3))), [0, 1, 2])


def test_sorted_queries_give_libigls_values_in_the_callers_order(sphere_mesh):
    """The spatial sort only speeds the queries up: every value is the one libigl gives for that point alone."""
    import igl

    vertices, faces = np.asarray(sphere_mesh.vertices, dtype=np.float64), np.asarray(sphere_mesh.faces, dtype=np.int64)
    points = np.random.default_rng(1).uniform(-1.05, 1.05, (5000, 3))
    tree = igl.AABB()
    tree.init(vertices, faces)
    distance = np.sqrt(tree.squared_distance(vertices, faces, points)[0]).astype(np.float32)
    inside = np.abs(igl.fast_winding_number(vertices, faces, points)) > 0.5
    assert np.array_equal(SignedDistance(sphere_mesh)(points), np.where(inside, distance, -distance))
    assert np.array_equal(SignedDistance(sphere_mesh).unsigned(points), distance)
    assert np.array_equal(inside_by_winding_number(vertices, faces, points), inside)


def test_closed_surfaces_are_told_from_open_and_miswound_ones(sphere_mesh, torus):
    from ksc.mesh.topology import is_closed_surface

    assert is_closed_surface(sphere_mesh.vertices, sphere_mesh.faces)
    assert is_closed_surface(torus.vertices, torus.faces)
    # A texture seam: one vertex split in two at the same position still closes the surface.
    vertices = np.vstack([sphere_mesh.vertices, sphere_mesh.vertices[:1]])
    faces = sphere_mesh.faces.copy()
    first = np.flatnonzero((faces == 0).any(axis=1))[0]
    faces[first][faces[first] == 0] = len(vertices) - 1
    assert is_closed_surface(vertices, faces)
    assert not is_closed_surface(sphere_mesh.vertices, sphere_mesh.faces[1:])  # a hole
    flipped = sphere_mesh.faces.copy()
    flipped[0] = flipped[0, ::-1]
    assert not is_closed_surface(sphere_mesh.vertices, flipped)  # a face wound against its neighbours
    assert not is_closed_surface(sphere_mesh.vertices, np.zeros((0, 3), np.int64))


def test_two_pass_winding_number_gives_the_full_accuracy_inside(sphere_mesh):
    """Fast pass first, doubtful points again at libigl's recommended accuracy: the same inside as one full pass,
    on an open ball, whose winding number is near 1/2 all across its hole."""
    import igl

    from ksc.mesh.sampling import ACCURACY, DOUBT, FAST_ACCURACY, WindingNumber

    open_ball = sphere_mesh.copy()
    open_ball.update_faces(np.arange(len(open_ball.faces)) >= 800)  # a hole of a sixth of the sphere
    vertices, faces = np.asarray(open_ball.vertices, dtype=np.float64), np.asarray(open_ball.faces, dtype=np.int64)
    points = np.random.default_rng(2).uniform(-1.05, 1.05, (20000, 3))
    hierarchy = igl.FastWindingNumberBVH()
    hierarchy.init(vertices, faces)
    doubtful = np.abs(np.abs(hierarchy.winding_number(points, FAST_ACCURACY)) - 0.5) < DOUBT
    assert doubtful.mean() > 0.01  # the second pass has work here
    full = np.abs(hierarchy.winding_number(points, ACCURACY)) > 0.5
    assert np.array_equal(full, np.abs(igl.fast_winding_number(vertices, faces, points)) > 0.5)
    assert np.array_equal(WindingNumber(vertices, faces).inside(points), full)
    assert WindingNumber(vertices, faces).inside(np.zeros((0, 3))).shape == (0,)
