"""The written-out training step against autograd through KeySphereNet."""

import pytest
import torch

from ksc import backprop
from ksc.backprop import FusedTrainer
from ksc.config import ModelConfig
from ksc.model import KeySphereNet
from ksc.train import sdf_loss

CONFIGS = [
    ModelConfig(),
    ModelConfig(features="latent"),
    ModelConfig(activation="relu"),
    ModelConfig(weighting="inverse", frequencies=0),
    ModelConfig(weighting="inverse_square", layers=1, width=7, spheres=5, feature_dim=3),
]


DEVICES = [
    "cpu",
    pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")),
]


def _problem(config: ModelConfig, points: int = 3000, device: str = "cpu"):
    generator = torch.Generator().manual_seed(1)
    spheres = torch.rand(config.spheres, 4, generator=generator) * torch.tensor([1.6, 1.6, 1.6, 0.3]) - torch.tensor(
        [0.8, 0.8, 0.8, 0.0]
    )
    model = KeySphereNet(config, spheres)
    xyz = torch.rand(points, 3, generator=generator) * 2 - 1
    target = torch.rand(points, generator=generator) - 0.5
    index = torch.randint(points, (512,), generator=generator)
    return model.to(device), xyz.to(device), target.to(device), index.to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.features}-{c.activation}-{c.weighting}-{c.layers}x{c.width}")
def test_loss_and_gradients_match_autograd(config, device):
    model, points, target, index = _problem(config, device=device)
    loss = sdf_loss(model(points[index]), target[index])
    loss.backward()
    trainer = FusedTrainer(model, points, target, len(index))
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


def test_adam_matches_torch():
    generator = torch.Generator().manual_seed(2)
    start = torch.randn(50, generator=generator)
    ours, theirs = start.clone(), torch.nn.Parameter(start.clone())
    adam, reference = backprop.Adam(ours), torch.optim.Adam([theirs], lr=0.01)
    for _ in range(20):
        gradient = torch.randn(50, generator=generator)
        adam.step(gradient, 0.01)
        theirs.grad = gradient.clone()
        reference.step()
    assert torch.allclose(ours, theirs.detach(), atol=1e-6)


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
