import numpy as np
import pytest
import trimesh

from ksc.encoding.sampling import SignedDistance
from ksc.encoding.spheres import extract_key_spheres
from ksc.errors import KscInputError
from ksc.mesh.normalize import Transform


def _unit(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    """``mesh`` in the encoder's normalized frame."""
    return trimesh.Trimesh(Transform.fit(mesh.vertices).to_unit(mesh.vertices), mesh.faces, process=False)


def test_spheres_lie_inside_and_spread_apart(torus):
    signed_distance = SignedDistance(_unit(torus))
    spheres = extract_key_spheres(signed_distance, 64).spheres
    assert spheres.shape == (64, 4)
    centres, radii = spheres[:, :3], spheres[:, 3]
    assert np.all(radii > 0)
    assert np.allclose(signed_distance(centres), radii, atol=1e-5)  # radius = SDF of the centre
    # No centre lies inside another sphere: each was chosen outside all earlier ones.
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=-1) - radii[None, :]
    earlier = np.tril(np.ones((64, 64), dtype=bool), k=-1)
    assert np.all(gaps[earlier] > 0)
    # Spread around the ring, not piled on one side: every quadrant holds spheres.
    angles = np.arctan2(centres[:, 1], centres[:, 0])
    assert len(np.unique(np.floor((angles + np.pi) / (np.pi / 2)).astype(int))) == 4


def test_radii_decrease_for_the_first_picks(sphere_mesh):
    spheres = extract_key_spheres(SignedDistance(sphere_mesh), 16).spheres
    assert spheres[0, 3] == pytest.approx(0.8, abs=0.03)  # the centre of the ball comes first
    assert spheres[0, 3] >= spheres[1:, 3].max()


def test_flat_mesh_has_no_interior():
    square = trimesh.Trimesh(vertices=[[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], faces=[[0, 1, 2], [0, 2, 3]])
    with pytest.raises(KscInputError, match="encloses no volume"):
        extract_key_spheres(SignedDistance(square), 8)


def test_the_file_stores_centres_exactly_and_in_fewer_bytes(torus):
    from ksc.encoding.pipeline import sphere_codec_for_grid
    from ksc.format import SortedUniformCodec

    key = extract_key_spheres(SignedDistance(_unit(torus)), 64)
    codec = sphere_codec_for_grid(key.grid_size)
    stored = codec.decode(codec.encode(key.spheres), key.spheres.shape)
    order = np.lexsort(key.spheres[:, ::-1].T)
    assert np.allclose(stored[:, :3], key.spheres[order, :3], rtol=0, atol=1e-6)  # float32 of the grid node
    assert np.all(np.abs(stored[:, 3] - key.spheres[order, 3]) <= 0.5 / 255 + 1e-6)
    # A 12-bit code over [-1, 1] per value (ksc 0.4) spends a third more on the same spheres.
    twelve_bit = SortedUniformCodec.over_range(12, [-1, -1, -1, 0], [1, 1, 1, 1])
    assert len(codec.encode(key.spheres)) < 0.8 * len(twelve_bit.encode(key.spheres))


class _CountingDistance:
    """A SignedDistance that counts the points it is asked about (and can pretend the surface is open)."""

    def __init__(self, mesh: trimesh.Trimesh, closed: bool | None = None):
        self._oracle = SignedDistance(mesh)
        self.closed = self._oracle.closed if closed is None else closed
        self.queries = 0

    def __call__(self, points):
        self.queries += len(points)
        return self._oracle(points)

    def unsigned(self, points):
        self.queries += len(points)
        return self._oracle.unsigned(points)


@pytest.mark.parametrize(("minor", "count", "grid"), [(0.35, 64, 64), (0.04, 256, 128)])
def test_coarse_to_fine_grid_picks_the_dense_grids_spheres(minor, count, grid):
    ring = _unit(trimesh.creation.torus(major_radius=1.0, minor_radius=minor, major_sections=96, minor_sections=24))
    coarse, dense = _CountingDistance(ring), _CountingDistance(ring, closed=False)
    assert coarse.closed
    fine, reference = extract_key_spheres(coarse, count), extract_key_spheres(dense, count)
    assert fine.grid_size == reference.grid_size == grid
    assert np.array_equal(fine.spheres, reference.spheres)
    assert coarse.queries < 0.4 * dense.queries  # most of the box is settled by the coarse levels


def test_open_surfaces_keep_the_dense_grid(sphere_mesh):
    open_ball = sphere_mesh.copy()
    open_ball.update_faces(np.arange(len(open_ball.faces)) >= 1)
    oracle = _CountingDistance(open_ball)
    assert not oracle.closed
    extract_key_spheres(oracle, 16)
    assert oracle.queries == 64**3
