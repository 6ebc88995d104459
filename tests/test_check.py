"""The encoder's self-check: a file that decodes to the input's shape passes, any other shape is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
import trimesh

from ksc.encoding.check import check_file
from ksc.errors import KscInputError
from ksc.mesh.normalize import Transform

GOLDEN_TORUS = Path(__file__).resolve().parent / "golden" / "v5.0" / "torus.ksc"


def unit(mesh: trimesh.Trimesh) -> trimesh.Trimesh:
    transform = Transform.fit(mesh.vertices)
    return trimesh.Trimesh(transform.to_unit(mesh.vertices), mesh.faces, process=False)


def golden_torus_mesh() -> trimesh.Trimesh:
    from tests.golden.regenerate import golden_torus

    return golden_torus()


def test_a_file_passes_against_its_own_input():
    check = check_file(GOLDEN_TORUS.read_bytes(), unit(golden_torus_mesh()))
    assert check.passed, check.describe()
    assert check.chamfer_l1 < 0.01 and check.iou > 0.9


def test_a_file_fails_against_another_shape():
    """The torus file checked against a ball that fills the same box: same frame, wrong shape."""
    ball = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    check = check_file(GOLDEN_TORUS.read_bytes(), unit(ball))
    assert not check.passed
    assert check.iou < 0.5 and check.chamfer_l1 > 0.05


def test_the_encoder_refuses_a_file_that_fails_its_check(monkeypatch, torus):
    """With the limit tightened past what any file reaches, a real encode is refused with the check's numbers."""
    import ksc.encoding.check
    from ksc.encoding.pipeline import encode_mesh

    from .conftest import quick_options

    monkeypatch.setattr(ksc.encoding.check, "MAX_CHAMFER", 0.0)
    with pytest.raises(KscInputError, match=r"does not describe the input \(Chamfer-L1 0\.\d+ \(limit 0\.0\)"):
        encode_mesh(torus, quick_options(steps=100))


def test_an_encode_reports_the_seconds_of_every_stage(torus):
    from ksc.encoding.pipeline import STAGES, encode_mesh

    from .conftest import quick_options

    result = encode_mesh(torus, quick_options(steps=600))
    assert set(result.timings) == set(STAGES)
    assert all(seconds >= 0.0 for seconds in result.timings.values())
    assert result.timings["training"] > 0.0 and result.timings["distances"] > 0.0 and result.timings["signs"] > 0.0
    before_check = sum(seconds for stage, seconds in result.timings.items() if stage != "self-check")
    assert before_check <= result.seconds  # ``seconds`` is taken when the file is written, before its check
