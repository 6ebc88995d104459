"""The rate-distortion benchmark's BD-rate (benchmarks/rival.py), on curves whose answer is known."""

from __future__ import annotations

import pytest

from benchmarks.rival import bd_rate

THEIRS = [(2000, 0.004), (4000, 0.002), (8000, 0.001), (16000, 0.0005)]


def test_a_codec_against_itself_saves_nothing():
    assert bd_rate(THEIRS, THEIRS) == (pytest.approx(0.0, abs=1e-12), "mean")


def test_the_same_errors_in_four_fifths_of_the_bytes_is_minus_twenty_percent():
    ours = [(0.8 * size, error) for size, error in THEIRS]
    value, kind = bd_rate(ours, THEIRS)
    assert kind == "mean" and value == pytest.approx(-0.2)


def test_one_point_is_compared_at_its_error_and_beyond_their_curve_as_a_bound():
    value, kind = bd_rate([(6000, 0.002)], THEIRS)  # they reach 0.002 at 4000 bytes
    assert kind == "at" and value == pytest.approx(0.5)
    value, kind = bd_rate([(6000, 0.01)], THEIRS)  # worse than their smallest file
    assert kind == "at least" and value == pytest.approx(2.0)
    value, kind = bd_rate([(8000, 0.0001)], THEIRS)  # better than their largest
    assert kind == "at most" and value == pytest.approx(-0.5)


def test_points_off_the_pareto_front_do_not_count():
    noisy = [*THEIRS, (12000, 0.003)]  # more bytes and more error than the 4000-byte point
    assert bd_rate(THEIRS, noisy) == (pytest.approx(0.0, abs=1e-12), "mean")
    assert bd_rate([], THEIRS) is None
