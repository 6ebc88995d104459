"""Per-tensor quantization steps: the allocation rule, its measurement, and what the file stores."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from ksc.encoding.config import TrainConfig
from ksc.encoding.pipeline import STEP_FACTOR, train_mesh
from ksc.encoding.quantize import FakeQuantizer
from ksc.encoding.sampling import SdfSamples
from ksc.encoding.step_allocation import SCALE_RANGE, _layer_inputs, _prediction_with, step_scales, tensor_sensitivities
from ksc.encoding.train import fit
from ksc.format import ArithmeticUniformCodec, read_container
from ksc.format.codecs import rms_step
from ksc.models.config import ModelConfig
from ksc.models.network import KeySphereNet
from tests.conftest import make_torus, quick_options


def _rate_change(scales, counts):
    return sum(counts[name] * math.log2(scale) for name, scale in scales.items())


def test_scales_keep_the_bits_and_follow_sqrt_count_over_sensitivity():
    counts = {"a": 1000, "b": 1000, "c": 40}
    sensitivities = {"a": 4e-5, "b": 1e-5, "c": 4e-6}
    scales = step_scales(sensitivities, counts)
    assert _rate_change(scales, counts) == pytest.approx(0.0, abs=1e-6)
    # Four times the sensitivity per weight: half the step.
    assert scales["a"] / scales["b"] == pytest.approx(0.5, rel=1e-9)
    ratio = math.sqrt((counts["c"] / sensitivities["c"]) / (counts["b"] / sensitivities["b"]))
    assert scales["c"] / scales["b"] == pytest.approx(ratio, rel=1e-9)


def test_scales_are_clipped_and_an_insensitive_tensor_gets_the_coarsest_step():
    low, high = SCALE_RANGE
    counts = {"matrix": 1000, "other": 1000, "unused": 10, "bias": 1}
    scales = step_scales({"matrix": 1e-5, "other": 2e-5, "unused": 0.0, "bias": 1.0}, counts)
    assert scales["unused"] == high and scales["bias"] == low
    assert all(low <= scale <= high for scale in scales.values())
    assert _rate_change(scales, counts) == pytest.approx(0.0, abs=1e-6)


def test_scales_need_the_same_tensors():
    with pytest.raises(ValueError, match="same tensors"):
        step_scales({"a": 1.0}, {"b": 3})


@pytest.fixture(scope="module")
def small_trained():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (140000, 3)).astype(np.float32)  # more than SENSITIVITY_POINTS: full chunks
    samples = SdfSamples(points, (0.5 - np.linalg.norm(points, axis=1)).astype(np.float32))
    torch.manual_seed(0)
    spheres = torch.tensor([[0.0, 0.0, 0.0, 0.5], [0.2, 0.0, 0.0, 0.3], [-0.2, 0.1, 0.0, 0.3], [0.0, -0.2, 0.1, 0.3]])
    model = KeySphereNet(ModelConfig(spheres=4, layers=2, width=16), spheres)
    fit(model, samples, TrainConfig(steps=300, batch_size=512), torch.Generator().manual_seed(0), torch.device("cpu"))
    return model, samples


def test_sensitivities_are_reproducible_and_leave_the_model_unchanged(small_trained):
    model, samples = small_trained
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    first = tensor_sensitivities(model, samples, 8, TrainConfig(), torch.Generator().manual_seed(3))
    second = tensor_sensitivities(model, samples, 8, TrainConfig(), torch.Generator().manual_seed(3))
    assert first == second
    assert set(first) == set(before) and all(value >= 0.0 for value in first.values())
    assert first["hidden.0.weight"] > 0.0  # noise in a trained layer costs loss
    assert all(torch.equal(before[name], p) for name, p in model.named_parameters())


def test_sensitivities_do_not_depend_on_the_thread_count(small_trained):
    """The scales set float32 steps, so a last-bit difference would change the file's bytes."""
    model, samples = small_trained
    previous = torch.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            results.append(tensor_sensitivities(model, samples, 8, TrainConfig(), torch.Generator().manual_seed(3)))
            assert torch.get_num_threads() == threads  # restored after the measurement
    finally:
        torch.set_num_threads(previous)
    assert results[0] == results[1]


def test_a_pass_from_a_cached_layer_input_is_the_whole_pass(small_trained):
    """The measurement restarts at the changed layer's cached input; that must be what the whole network computes."""
    from torch.func import functional_call

    model, samples = small_trained
    points = torch.from_numpy(samples.points[:1000])
    with torch.no_grad():
        inputs = _layer_inputs(model, points)
        for name, value in model.named_parameters():
            changed = value * 1.1 + 0.01
            expected = functional_call(model, {name: changed}, (points,))
            assert torch.allclose(_prediction_with(model, inputs, points, name, changed), expected, rtol=0, atol=1e-6), name
            assert not torch.allclose(expected, model(points)), name


def test_sensitivity_grows_with_the_noise(small_trained):
    """At 6 bits the unit of noise is 4x the 8-bit one, so the measured loss is about 16x (the square law the rule assumes)."""
    model, samples = small_trained
    fine = tensor_sensitivities(model, samples, 8, TrainConfig(), torch.Generator().manual_seed(3))
    coarse = tensor_sensitivities(model, samples, 6, TrainConfig(), torch.Generator().manual_seed(3))
    for name in ("hidden.0.weight", "hidden.1.weight"):
        assert 6.0 < coarse[name] / fine[name] < 40.0


@pytest.mark.parametrize("bits", [6, 8, 11])
def test_fake_quantization_matches_the_scaled_codec(bits):
    """Tensors of several sizes and scales laid end to end, one of them all zeros (the codec's step 1)."""
    rng = np.random.default_rng(bits)
    tensors = [rng.normal(0, 0.2, (34, 47)), rng.normal(0, 3.0, (47,)), np.zeros(5), rng.normal(0, 0.01, (1, 47))]
    tensors = [t.astype(np.float32) for t in tensors]
    scales = [0.3, 1.0, 2.7, 1.7]
    quantizer = FakeQuantizer([t.size for t in tensors], bits, scales)
    flat = quantizer(torch.from_numpy(np.concatenate([t.reshape(-1) for t in tensors]))).numpy()
    codec = ArithmeticUniformCodec(bits)
    stored = [codec.decode(codec.encode(t, scale), t.shape).reshape(-1) for t, scale in zip(tensors, scales, strict=True)]
    assert np.array_equal(flat, np.concatenate(stored))


def test_codec_refuses_a_bad_step_scale():
    with pytest.raises(ValueError, match="step scale"):
        ArithmeticUniformCodec(8).encode(np.ones(4), 0.0)


def _stored_scales(data: bytes, bits: int) -> dict[str, float]:
    """Each weight tensor's stored step over the RMS step of its stored values."""
    scales = {}
    for record in read_container(data).tensors[1:]:
        step = float(np.frombuffer(record.data[:4], dtype="<f4")[0])
        values = record.decode().astype(np.float64)
        scales[record.name] = step / rms_step(float(np.sqrt(np.mean(values**2))), bits)
    return scales


def test_the_file_stores_the_allocated_steps():
    mesh = make_torus()
    trained = train_mesh(mesh, quick_options(steps=300))
    scales = trained.step_scales
    assert len(set(round(s, 6) for s in scales.values())) > 1, "the allocation should not give every tensor the same step"
    stored = _stored_scales(trained.encode(8).data, 8)
    for name, scale in stored.items():
        # The stored values' RMS is the trained one's up to rounding: a few % for tiny or coarse tensors.
        assert scale == pytest.approx(scales[name], rel=0.1), name
    counts = {name: p.numel() for name, p in trained.model.named_parameters()}
    # the allocation moves bits between tensors; every step is then STEP_FACTOR coarser
    allocated = {name: scale / STEP_FACTOR for name, scale in scales.items()}
    assert _rate_change(allocated, counts) == pytest.approx(0.0, abs=1e-6 * sum(counts.values()))

    plain = train_mesh(mesh, replace(quick_options(steps=300), allocate_steps=False))
    assert set(plain.step_scales.values()) == {STEP_FACTOR}
    result = plain.encode(8)
    assert read_container(result.data).meta["encoder"]["allocate_steps"] is False
    assert all(scale == pytest.approx(STEP_FACTOR, rel=0.1) for scale in _stored_scales(result.data, 8).values())
    assert "allocate_steps" not in read_container(trained.encode(8).data).meta["encoder"]
