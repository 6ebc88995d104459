import numpy as np
import pytest

from ksc.errors import KscInputError
from ksc.mesh.normalize import Transform


def test_transform_fills_unit_cube_and_round_trips():
    rng = np.random.default_rng(1)
    points = rng.normal(size=(500, 3)) * [3.0, 1.0, 0.5] + [10.0, -2.0, 7.0]
    transform = Transform.fit(points)
    unit = transform.to_unit(points)
    assert np.isclose(np.abs(unit).max(), 1.0)
    assert np.allclose((unit.min(axis=0) + unit.max(axis=0)) / 2.0, 0.0)
    assert np.allclose(transform.to_original(unit), points)


def test_transform_rejects_a_single_point():
    with pytest.raises(KscInputError, match="zero extent"):
        Transform.fit(np.ones((4, 3)))
