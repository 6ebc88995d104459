"""The written-out training step against autograd through KeySphereNet."""

import multiprocessing
import time

import pytest
import torch

from ksc.encoding import backprop
from ksc.encoding import soap as optimizer
from ksc.encoding.backprop import FusedTrainer, PointTable
from ksc.encoding.train import sdf_loss
from ksc.models.config import ModelConfig
from ksc.models.network import KeySphereNet

CONFIGS = [
    ModelConfig(),
    ModelConfig(features="latent"),
    ModelConfig(activation="relu"),
    ModelConfig(frequencies=0),
    ModelConfig(layers=1, width=7, spheres=5, feature_dim=3),
]


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")),
]


def _problem(config: ModelConfig, points: int = 3000, device: str = "cpu"):
    torch.manual_seed(0)  # the model's initial weights
    generator = torch.Generator().manual_seed(1)
    spheres = torch.rand(config.spheres, 4, generator=generator) * torch.tensor([1.6, 1.6, 1.6, 0.3]) - torch.tensor(
        [0.8, 0.8, 0.8, 0.0]
    )
    model = KeySphereNet(config, spheres)
    xyz = torch.rand(points, 3, generator=generator) * 2 - 1
    target = torch.rand(points, generator=generator) - 0.5
    index = torch.randint(points, (512,), generator=generator)
    return model.to(device), xyz.to(device), target.to(device), index.to(device)


@pytest.mark.parametrize("parts", [1, 3])
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.features}-{c.activation}-{c.weighting}-{c.layers}x{c.width}")
def test_loss_and_gradients_match_autograd(config, device, parts):
    model, points, target, index = _problem(config, device=device)
    loss = sdf_loss(model(points[index]), target[index])
    loss.backward()
    with FusedTrainer(model, points, target, len(index), parts) as trainer:
        fused_loss = trainer.step(index, learning_rate=0.0)
    assert float(fused_loss) == pytest.approx(float(loss.detach()), rel=1e-6)
    for (name, parameter), gradient in zip(model.named_parameters(), trainer.views(trainer.gradient).values(), strict=True):
        scale = float(parameter.grad.abs().max()) + 1e-12
        assert torch.allclose(gradient, parameter.grad, atol=1e-5 * scale, rtol=0), name


def test_per_batch_constants_give_the_same_bits_as_the_table(monkeypatch):
    config = ModelConfig()
    model, points, target, index = _problem(config)
    with_table = FusedTrainer(model, points, target, len(index))
    monkeypatch.setattr(backprop, "TABLE_BYTES", 0)
    without = FusedTrainer(model, points, target, len(index))
    assert with_table.table is not None and without.table is None
    for _ in range(3):
        assert torch.equal(with_table.step(index, 1e-3), without.step(index, 1e-3))
    assert torch.equal(with_table.parameters, without.parameters)


def test_trainers_share_a_point_table():
    """The fine-tuning reuses the training's table: the same rows, not a copy, and the same steps as its own."""
    model, points, target, index = _problem(ModelConfig())
    table = PointTable(model, points)
    shared, own = FusedTrainer(model, points, target, len(index), table=table), FusedTrainer(model, points, target, len(index))
    assert shared.table is table.rows
    assert torch.equal(shared.step(index, 1e-3), own.step(index, 1e-3))
    assert torch.equal(shared.parameters, own.parameters)


def _trained(parts: int, helpers: bool, steps: int = 5) -> FusedTrainer:
    model, points, target, _ = _problem(ModelConfig())
    trainer = FusedTrainer(model, points, target, 512, parts)
    assert (trainer.helpers is not None) == (parts > 1)
    if not helpers:
        trainer.close()
    generator = torch.Generator().manual_seed(4)
    for _ in range(steps):
        trainer.step(torch.randint(len(points), (512,), generator=generator), 1e-3)
    trainer.close()
    return trainer


def test_slices_give_the_same_bits_with_or_without_helper_processes():
    with_helpers = _trained(2, helpers=True)
    assert torch.equal(with_helpers.parameters, _trained(2, helpers=False).parameters)
    assert not torch.equal(with_helpers.parameters, _trained(1, helpers=False).parameters)  # the slices' sums round apart


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie has ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_helpers_stop_on_close():
    model, points, target, index = _problem(ModelConfig(width=8, layers=2))
    with FusedTrainer(model, points, target, len(index), 3) as trainer:
        pids = list(trainer.helpers.pids)
        assert len(pids) == 2 and all(_alive(pid) for pid in pids)
        trainer.step(index, 1e-3)
    assert trainer.helpers is None and not any(_alive(pid) for pid in pids)
    trainer.step(index, 1e-3)  # the slices then run here


def _train_in_a_daemon(queue, close: bool) -> None:
    torch.set_num_threads(1)  # a forked child must not enter the parent's OpenMP pool
    model, points, target, index = _problem(ModelConfig(width=8, layers=2))
    trainer = FusedTrainer(model, points, target, len(index), 3)
    trainer.step(index, 1e-3)
    queue.put((list(trainer.helpers.pids), trainer.parameters.tolist()))
    if close:
        trainer.close()  # else the helpers see the pipes close as this process ends


@pytest.mark.parametrize("close", [True, False])
def test_a_daemonic_process_has_helpers_too(close):
    """A Dask worker is a daemonic process: its encodes train on helpers as well, to the same bits,
    and the helpers end with it even when nobody closed the trainer."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_train_in_a_daemon, args=(queue, close), daemon=True)
    process.start()
    pids, parameters = queue.get(timeout=60)
    process.join(timeout=10)
    assert len(pids) == 2
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)
    model, points, target, index = _problem(ModelConfig(width=8, layers=2))
    with FusedTrainer(model, points, target, len(index), 3) as trainer:
        trainer.step(index, 1e-3)
    assert parameters == trainer.parameters.tolist()


def test_a_step_takes_a_whole_batch():
    model, points, target, index = _problem(ModelConfig(width=8, layers=2))
    with FusedTrainer(model, points, target, len(index)) as trainer, pytest.raises(ValueError, match="512 indices"):
        trainer.step(index[:100], 1e-3)


def test_soap_without_matrices_is_torch_adam():
    generator = torch.Generator().manual_seed(2)
    start = torch.randn(50, generator=generator)
    ours, theirs = start.clone(), torch.nn.Parameter(start.clone())
    soap, reference = optimizer.Soap(ours), torch.optim.Adam([theirs], lr=0.01)
    for _ in range(20):
        gradient = torch.randn(50, generator=generator)
        soap.step(gradient, 0.01)
        theirs.grad = gradient.clone()
        reference.step()
    assert torch.allclose(ours, theirs.detach(), atol=1e-6)


def _rotated(a, s, back=False):
    """``a`` in the reference's bases ``s`` (a vector has none)."""
    if "QL" not in s:
        return a
    return s["QL"] @ a @ s["QR"].T if back else s["QL"].T @ a @ s["QR"]


def _reference_soap(tensors, gradients, state, learning_rate):
    """SOAP written per tensor, as the paper's pseudo-code: the flat version must agree with it."""
    beta1, beta2, b = *optimizer.BETAS, optimizer.SHAMPOO_BETA
    state["t"] = t = state.get("t", 0) + 1
    for k, (x, g) in enumerate(zip(tensors, gradients, strict=True)):
        s = state.setdefault(k, {"m": torch.zeros_like(x), "v": torch.zeros_like(x)})
        if x.dim() == 2:
            s.setdefault("QL", torch.eye(x.shape[0]))
            s.setdefault("QR", torch.eye(x.shape[1]))
        s["m"] = beta1 * s["m"] + (1 - beta1) * g
        s["v"] = beta2 * s["v"] + (1 - beta2) * _rotated(g, s) ** 2
        update = _rotated(s["m"], s) / ((s["v"] / (1 - beta2**t)).sqrt() + optimizer.EPS)
        x -= learning_rate / (1 - beta1**t) * _rotated(update, s, back=True)
        if x.dim() == 2:
            s["L"] = b * s.get("L", torch.zeros(x.shape[0], x.shape[0])) + (1 - b) * g @ g.T
            s["R"] = b * s.get("R", torch.zeros(x.shape[1], x.shape[1])) + (1 - b) * g.T @ g
            if t == 1 or t % optimizer.SOAP_EVERY == 0:
                s["QL"], s["QR"] = (torch.linalg.eigh(s[side].double()).eigenvectors.float() for side in "LR")


def test_soap_matches_a_per_tensor_reference():
    # square matrices: one gradient's G G^T has full rank, so no eigenbasis is arbitrary in a null space; the
    # two 4 x 4 ones are one batch of the flat version, as the hidden layers are
    generator = torch.Generator().manual_seed(4)
    shapes = [(4, 4), (4,), (4, 4), (4,), (5, 5), (1,)]
    tensors = [torch.randn(shape, generator=generator) for shape in shapes]
    flat = torch.cat([t.reshape(-1) for t in tensors])
    adam_flat = flat.clone()
    soap, adam = optimizer.Soap(flat, [(0, 4, 4), (20, 4, 4), (40, 5, 5)]), optimizer.Soap(adam_flat)
    assert [group["gradient"].shape for group in soap.groups] == [(2, 4, 4), (1, 5, 5)]
    state = {}
    for _ in range(2 * optimizer.SOAP_EVERY + 3):  # across two recomputations of the eigenbases
        gradients = [torch.randn(shape, generator=generator) for shape in shapes]
        soap.step(torch.cat([g.reshape(-1) for g in gradients]), 0.01)
        adam.step(torch.cat([g.reshape(-1) for g in gradients]), 0.01)
        _reference_soap(tensors, gradients, state, 0.01)
    assert torch.allclose(flat, torch.cat([t.reshape(-1) for t in tensors]), atol=1e-5)
    assert not torch.allclose(flat[:16], adam_flat[:16], atol=1e-3)  # the rotation changes the matrices' updates
    assert torch.equal(flat[16:20], adam_flat[16:20])  # and leaves the vectors' alone


@pytest.mark.parametrize("failure", ["raises", "nan"])
def test_soap_keeps_its_bases_where_a_decomposition_fails(monkeypatch, failure):
    # float32 LAPACK returns NaN eigenvectors on averages decayed to subnormals (a dead unit's); whatever the
    # cause, a failed decomposition must not reach the parameters
    generator = torch.Generator().manual_seed(5)
    flat = torch.randn(16, generator=generator)
    soap = optimizer.Soap(flat, [(0, 4, 4)])
    for _ in range(optimizer.SOAP_EVERY - 1):
        soap.step(torch.randn(16, generator=generator), 0.01)
    bases = [soap.groups[0][name].clone() for name in ("q_left", "q_right")]
    seen = []

    def failing(matrix):
        seen.append(matrix.dtype)
        if failure == "raises":
            raise torch.linalg.LinAlgError("failed to converge")
        nan = torch.full_like(matrix, float("nan"))
        return torch.return_types.linalg_eigh((nan[..., 0], nan))

    monkeypatch.setattr(torch.linalg, "eigh", failing)
    for _ in range(3):
        soap.step(torch.randn(16, generator=generator), 0.01)
    assert seen == [torch.float64, torch.float64]  # decomposed in float64, at step SOAP_EVERY only
    assert torch.equal(soap.groups[0]["q_left"], bases[0]) and torch.equal(soap.groups[0]["q_right"], bases[1])
    assert torch.isfinite(flat).all()


def test_soap_bases_of_subnormal_averages_are_orthonormal():
    # a unit that stopped receiving gradient: its row and column of G^T G decayed to subnormal float32 values
    generator = torch.Generator().manual_seed(6)
    g = torch.randn(40, 12, generator=generator) * 1e-3
    statistics = (g.T @ g)[None]
    statistics[0, 3, :] = statistics[0, :, 3] = 1.26e-44 * torch.sign(torch.randn(12, generator=generator))
    statistics[0, 5, :] = statistics[0, :, 5] = 0.0
    q = optimizer._eigenvectors(statistics, torch.eye(12)[None])
    assert q.dtype == torch.float32
    assert torch.allclose(q[0].T @ q[0], torch.eye(12), atol=1e-6)


def test_training_lowers_the_loss_and_writes_back():
    model, points, target, _ = _problem(ModelConfig(width=16, layers=2), points=2000)
    target = points.norm(dim=1) - 0.5  # a sphere's distance: learnable
    with torch.no_grad():
        before = float(sdf_loss(model(points), target))
    trainer = FusedTrainer(model, points, target, 256)
    generator = torch.Generator().manual_seed(3)
    for _ in range(300):
        trainer.step(torch.randint(len(points), (256,), generator=generator), 5e-3)
    trainer.write_back()
    with torch.no_grad():
        after = float(sdf_loss(model(points), target))
    assert after < 0.3 * before
