"""One contract for every registered network (``ksc.models.MODELS``): its golden vectors (``tests/golden/vectors/``,
points with the values and gradients its torch module gave when they were written) are reproduced by each of
its four implementations: the torch module that is fitted, the hand-written training step (its forward pass,
through the loss), the numpy runtime that decodes and the JavaScript runtime of the viewer and ksc-decoder.
A case is a golden file of a format version or a file of one branch of the model (activation, features,
weighting, Fourier features).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from ksc.models import MODELS

GOLDEN = Path(__file__).resolve().parent / "golden"
WEB = Path(__file__).resolve().parent.parent / "web"
VALUE_TOLERANCE, GRADIENT_TOLERANCE = 1e-5, 1e-4  # float32 networks evaluated in different orders


def _cases() -> list[tuple[str, Path]]:
    return [(model_id, path) for model_id in MODELS for path in sorted((GOLDEN / "vectors" / model_id).glob("*.json"))]


CASES = _cases()


def _load(path: Path) -> tuple[dict, bytes, np.ndarray]:
    vectors = json.loads(path.read_text())
    data = (GOLDEN / vectors["file"]).read_bytes()
    return vectors, data, np.array(vectors["points"], np.float32)


def _read_only(data: bytes) -> bool:
    """A branch only the decoders read (the weightings of files before ksc 0.14): the torch module refuses it."""
    from ksc.decoding.pipeline import load_field
    from ksc.errors import KscInputError
    from ksc.models.network import load_model

    if load_field(data).config.weighting == "paper":
        return False
    with pytest.raises(KscInputError, match="is only read"):
        load_model(data)
    return True


def _close(actual, expected, tolerance: float) -> float:
    """The largest difference, relative to the expected values' scale where that exceeds 1."""
    expected = np.asarray(expected, np.float64)
    return float(np.abs(np.asarray(actual, np.float64) - expected).max() / max(1.0, np.abs(expected).max()))


def test_every_model_and_golden_file_has_vectors():
    for model_id in MODELS:
        files = {json.loads(path.read_text())["file"] for model, path in CASES if model == model_id}
        golden = {path.relative_to(GOLDEN).as_posix() for path in GOLDEN.glob("v*.*/*.ksc")}
        assert golden <= files and len(files) >= len(golden) + 5, model_id  # every version, and the branches


@pytest.mark.parametrize(("model_id", "path"), CASES, ids=lambda case: getattr(case, "stem", case))
def test_numpy_runtime(model_id, path):
    from ksc.decoding.pipeline import load_field

    vectors, data, points = _load(path)
    field = load_field(data).field
    assert isinstance(field, MODELS[model_id].load("runtime"))
    assert _close(field(points), vectors["values"], 1) < VALUE_TOLERANCE
    values, gradients = field.values_and_gradients(points)
    assert _close(values, vectors["values"], 1) < VALUE_TOLERANCE
    assert _close(gradients, vectors["gradients"], 1) < GRADIENT_TOLERANCE


@pytest.mark.parametrize(("model_id", "path"), CASES, ids=lambda case: getattr(case, "stem", case))
def test_torch_module(model_id, path):
    from ksc.models.network import load_model

    vectors, data, points = _load(path)
    if _read_only(data):
        return
    network = load_model(data)
    assert isinstance(network, MODELS[model_id].load("network"))
    tensor = torch.from_numpy(points).requires_grad_(True)
    values = network(tensor)
    values.sum().backward()
    assert _close(values.detach().numpy(), vectors["values"], 1) < VALUE_TOLERANCE
    assert _close(tensor.grad.numpy(), vectors["gradients"], 1) < GRADIENT_TOLERANCE


@pytest.mark.parametrize(("model_id", "path"), CASES, ids=lambda case: getattr(case, "stem", case))
def test_training_step(model_id, path):
    """The written-out step's forward pass: its L1 loss against targets a known offset from the vectors' values."""
    from ksc.encoding.backprop import FusedTrainer
    from ksc.models.network import load_model

    vectors, data, points = _load(path)
    if _read_only(data):
        return
    values = torch.tensor(vectors["values"], dtype=torch.float32)
    offsets = torch.linspace(-0.3, 0.3, len(values))  # |f - target| = |offset| where f matches the vectors
    network = load_model(data).train()
    for parameter in network.parameters():
        parameter.requires_grad_(True)
    with FusedTrainer(network, torch.from_numpy(points), values - offsets, len(points), parts=1) as trainer:
        loss = float(trainer.step(torch.arange(len(points)), learning_rate=0.0))
    assert loss == pytest.approx(float(offsets.abs().mean()), abs=VALUE_TOLERANCE)


def test_javascript_runtime():
    node = shutil.which("node")
    if node is None or not (WEB / "node_modules" / "fzstd").is_dir():
        pytest.skip("node or web/node_modules is missing: run `make setup` (Node.js 18+ and npm ci in web/)")
    for model_id, path in CASES:
        vectors, data, points = _load(path)
        request = {"files": [base64.b64encode(data).decode()], "points": points.reshape(-1).tolist(), "cells": 0}
        done = subprocess.run(
            [node, str(WEB / "test" / "decode.mjs")], input=json.dumps(request), capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr[-2000:]
        (result,) = json.loads(done.stdout)
        assert "values" in result, (path.name, result)
        assert _close(result["values"], vectors["values"], 1) < VALUE_TOLERANCE, (model_id, path.name)
