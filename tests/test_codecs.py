import numpy as np
import pytest

from ksc.errors import KscFormatError
from ksc.format import ArithmeticUniformCodec, RowUniformCodec, SortedUniformCodec, UniformCodec, codec_from_config
from ksc.format.codecs import STEP_EXPONENT_OFFSET


@pytest.mark.parametrize("bits", [4, 8, 12])
def test_uniform_codec_error_is_at_most_half_a_step(bits):
    values = np.random.default_rng(0).normal(size=(17, 5))
    codec = UniformCodec.fit(values, bits)
    decoded = codec.decode(codec.encode(values), values.shape)
    assert np.abs(decoded - values).max() <= codec.step[0] / 2 + 1e-6


def test_row_codec_error_is_per_row():
    values = np.random.default_rng(0).normal(size=(8, 32)) * np.logspace(-3, 0, 8)[:, None]
    codec = RowUniformCodec(8)
    data = codec.encode(values)
    assert len(data) == codec.encoded_size(values.shape)
    decoded = codec.decode(data, values.shape)
    steps = np.frombuffer(data[: 8 * 4], dtype="<f2").reshape(8, 2)[:, 1].astype(np.float64)
    row_range = values.max(1) - values.min(1)
    # Each row gets its own step, close to its own range / 255 (float16 rounding aside).
    assert np.allclose(steps, row_range / 255, rtol=0.01)
    assert np.all(np.abs(decoded - values).max(1) <= steps / 2 * (1 + 1e-6))


def test_constant_tensor_decodes_exactly():
    values = np.full((1,), 0.123, dtype=np.float32)
    codec = UniformCodec.fit(values, 8)
    assert codec.decode(codec.encode(values), (1,))[0] == pytest.approx(0.123)


def test_per_axis_ranges_for_spheres():
    codec = UniformCodec.over_range(12, [-1, -1, -1, 0], [1, 1, 1, 1], axis=1)
    spheres = np.array([[-1.0, 0.3, 1.0, 0.0], [0.25, -0.5, 0.0, 0.9]])
    decoded = codec.decode(codec.encode(spheres), spheres.shape)
    assert np.abs(decoded - spheres).max() <= 1 / 4095 + 1e-7


@pytest.mark.parametrize(
    "codec",
    [
        UniformCodec.fit(np.arange(5.0), 6),
        RowUniformCodec(8),
        UniformCodec.over_range(10, [0, 1], [1, 3], axis=0),
        ArithmeticUniformCodec(7),
        SortedUniformCodec.over_range(12, [-1, -1, -1, 0], [1, 1, 1, 1]),
    ],
)
def test_configs_round_trip(codec):
    assert codec_from_config(codec.to_config()).to_config() == codec.to_config()


@pytest.mark.parametrize(
    "config,message",
    [
        ({"id": "lz-magic"}, "unknown tensor codec"),
        ({"id": "uniform_rows", "bits": 40}, "bits"),
        ({"id": "uniform_rows", "bits": 8, "extra": 1}, "bad fields"),
        ({"id": "uniform_ac", "bits": 0}, "bits"),
        ({"id": "uniform_ac"}, "bad fields"),
        ({"id": "uniform", "bits": 8, "axis": None, "low": [0.0], "step": [0.0]}, "non-positive"),
        ({"id": "uniform", "bits": 8, "axis": None, "low": [0.0, 1.0], "step": [1.0, 1.0]}, "exactly one"),
        ("uniform", "map"),
    ],
)
def test_bad_codec_configs_are_rejected(config, message):
    with pytest.raises(KscFormatError, match=message):
        codec_from_config(config)


@pytest.mark.parametrize("bits", [4, 8, 12])
def test_arithmetic_codec_error_is_at_most_half_its_step(bits):
    values = np.random.default_rng(1).laplace(size=(32, 32)).astype(np.float32)
    codec = ArithmeticUniformCodec(bits)
    data = codec.encode(values)
    codec.check_size(values.shape, len(data))
    step = float(np.frombuffer(data[:4], dtype="<f4")[0])
    rms = np.sqrt(np.mean(values.astype(np.float64) ** 2))
    assert step == pytest.approx(rms * 2 ** (STEP_EXPONENT_OFFSET - bits), rel=1e-6)
    assert np.abs(codec.decode(data, values.shape) - values).max() <= step / 2 * (1 + 1e-5)


def test_arithmetic_codec_spends_bytes_on_spread_not_on_range():
    # An 8-sigma outlier (trained weights have them) stretches a min-max range by ~40 %;
    # the RMS step, and so the size, hardly move.
    values = np.random.default_rng(2).normal(size=1024)
    with_outlier = values.copy()
    with_outlier[0] = 8.0
    codec = ArithmeticUniformCodec(8)
    plain, stretched = len(codec.encode(values)), len(codec.encode(with_outlier))
    # Gaussian values at step sigma / 64 carry 6 + log2(sqrt(2 pi e)) = 8.05 bits each; allow 7 % coder overhead.
    assert plain < 1024 * 8.05 * 1.07 / 8
    assert abs(stretched - plain) < 0.02 * plain


def test_arithmetic_codec_zero_tensor_is_exact():
    codec = ArithmeticUniformCodec(8)
    zeros = np.zeros((4, 4), dtype=np.float32)
    assert np.array_equal(codec.decode(codec.encode(zeros), (4, 4)), zeros)


@pytest.mark.parametrize("step", [0.0, -1.0, np.inf, np.nan])
def test_arithmetic_codec_rejects_a_bad_stored_step(step):
    data = np.array([step], dtype="<f4").tobytes() + b"\x12\x34"
    with pytest.raises(KscFormatError, match="step"):
        ArithmeticUniformCodec(8).decode(data, (3,))


@pytest.mark.parametrize("size", [0, 3, 4 + 90 * 6 + 1])
def test_arithmetic_codec_rejects_impossible_sizes(size):
    with pytest.raises(KscFormatError, match="impossible"):
        ArithmeticUniformCodec(8).check_size((2, 3), size)


SPHERE_CODEC = SortedUniformCodec.over_range(12, [-1, -1, -1, 0], [1, 1, 1, 1])


def random_spheres(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(-1, 1, (count, 3)), rng.uniform(0, 0.3, count)])


def test_sorted_codec_returns_the_same_set_of_rows_sorted():
    spheres = random_spheres(128)
    data = SPHERE_CODEC.encode(spheres)
    SPHERE_CODEC.check_size(spheres.shape, len(data))
    decoded = SPHERE_CODEC.decode(data, spheres.shape)
    expected = SPHERE_CODEC.sort(spheres)
    assert np.abs(decoded - expected).max() <= 1 / 4095 + 1e-6
    assert np.all(np.diff(decoded[:, 0]) >= 0)
    # Sorting is idempotent, so what the encoder trains on is what the file gives back.
    assert np.array_equal(SPHERE_CODEC.decode(SPHERE_CODEC.encode(decoded), spheres.shape), decoded)
    # Spheres spread over the whole cube still cost less than 12-bit codes packed tight
    # (6 bytes a sphere); real ones, clustered inside a shape, cost about half of that.
    assert len(data) < 128 * 6


def test_sorted_codec_rejects_integers_outside_its_range():
    # Differences that add up past 2**12 - 1 cannot come from the encoder.
    from ksc.format.rangecoder import encode_integers

    data = encode_integers(np.array([4000, 100, 0, 0, 0, 0, 0, 0]))
    with pytest.raises(KscFormatError, match="outside"):
        SPHERE_CODEC.decode(data, (2, 4))


def test_sorted_codec_needs_its_column_count():
    with pytest.raises(KscFormatError, match="columns"):
        SPHERE_CODEC.check_size((5, 3), 10)
