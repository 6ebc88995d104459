"""The numpy network (ksc.models.runtime) beyond the network contract (tests/test_network_contract.py): grids, shapes,
threads, and a decoder without torch."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from ksc.decoding.extract import evaluate_grid, extract_surface
from ksc.decoding.pipeline import load_field
from ksc.models.config import ModelConfig
from ksc.models.network import KeySphereNet, load_model
from ksc.models.runtime import SphereField

GOLDEN = sorted((Path(__file__).resolve().parent / "golden").glob("v*/*.ksc"))
POINTS = np.random.default_rng(0).uniform(-1.05, 1.05, size=(3000, 3)).astype(np.float32)


def torch_values_and_gradients(model: KeySphereNet, points: np.ndarray):
    tensor = torch.from_numpy(points).requires_grad_(True)
    values = model(tensor)
    values.sum().backward()
    return values.detach().numpy(), tensor.grad.numpy()


def random_pair(**config):
    """A torch network with random weights and the numpy field of the same tensors."""
    config = ModelConfig(**{"spheres": 16, "layers": 3, "width": 12, **config})
    torch.manual_seed(0)
    spheres = torch.cat([torch.rand(config.spheres, 3) * 1.6 - 0.8, torch.rand(config.spheres, 1) * 0.2 + 0.01], dim=1)
    model = KeySphereNet(config, spheres).eval()
    tensors = {name: value.detach().numpy() for name, value in model.stored_tensors().items()}
    return model, SphereField(config, tensors)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.parent.name)
def test_marching_cubes_of_both_networks_has_the_same_faces(path):
    data = path.read_bytes()
    field, model = load_field(data).field, load_model(data)
    resolution, bound = 48, load_field(data).bound
    axis = torch.linspace(-bound, bound, resolution)
    grid = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij"), dim=-1).reshape(-1, 3)
    with torch.no_grad():
        reference = model(grid).numpy().reshape((resolution,) * 3)
    mine = evaluate_grid(field, resolution, bound).values
    assert np.abs(mine - reference).max() < 1e-5
    assert len(extract_surface(mine, bound)[1]) == len(extract_surface(reference, bound)[1])


def test_grid_nodes_take_the_same_values_as_points():
    _, field = random_pair()
    axis = np.linspace(-1.05, 1.05, 37).astype(np.float32)
    nodes = np.random.default_rng(1).integers(0, 37, size=(5000, 3))
    assert np.abs(field.at_nodes(axis, nodes) - field(axis[nodes])).max() < 1e-5
    other = np.linspace(-1.2, 1.2, 37).astype(np.float32)  # the per-axis tables follow the axis
    assert np.abs(field.at_nodes(other, nodes) - field(other[nodes])).max() < 1e-5


def test_a_tensor_of_the_wrong_shape_is_refused():
    model, _ = random_pair()
    tensors = {name: value.detach().numpy() for name, value in model.stored_tensors().items()}
    tensors["hidden.1.weight"] = tensors["hidden.1.weight"][:, :-1]
    with pytest.raises(Exception, match="hidden.1.weight"):
        SphereField(model.config, tensors)


DECODE_WITHOUT_TORCH = """
import json, sys
import ksc
from ksc.cli.main import main
data = open(sys.argv[1], "rb").read()
mesh = ksc.decode(data, resolution=48)
report = ksc.info(data)
for args in (["decode", sys.argv[1], sys.argv[2], "--resolution", "40", "-q"], ["info", sys.argv[1]], ["verify", sys.argv[1]]):
    try:
        main(args, standalone_mode=False)
    except SystemExit as stop:
        assert not stop.code, stop.code
print(json.dumps({"torch": "torch" in sys.modules, "faces": len(mesh.faces), "spheres": report["spheres"]}))
"""


def test_decode_info_and_verify_never_import_torch(tmp_path):
    golden = GOLDEN[-1]
    out = tmp_path / "decoded.ply"
    done = subprocess.run(
        [sys.executable, "-c", DECODE_WITHOUT_TORCH, str(golden), str(out)], capture_output=True, text=True, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["torch"] is False
    assert report["faces"] > 0 and report["spheres"] == 64
    assert out.stat().st_size > 0


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork on this platform")
def test_a_forked_child_evaluates_with_its_own_threads():
    """The chunk pool's threads do not survive fork; a child that reused the parent's pool would wait forever."""
    _, field = random_pair()
    points = np.random.default_rng(2).uniform(-1, 1, size=(40_000, 3)).astype(np.float32)
    expected = field(points)  # starts the pool in this process
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if it evaluates the same values
        os._exit(0 if np.array_equal(field(points), expected) else 1)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            assert os.waitstatus_to_exitcode(status) == 0
            return
        time.sleep(0.05)
    os.kill(pid, 9)
    pytest.fail("the forked child did not finish evaluating within 60 s")
