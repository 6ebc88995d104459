import pytest
import torch

from ksc.config import EncodeOptions, TrainConfig
from ksc.errors import KscInputError
from ksc.train import learning_rate_at, sdf_loss


def test_loss_without_clamp_is_plain_l1():
    prediction, target = torch.randn(1000), torch.randn(1000)
    assert torch.allclose(sdf_loss(prediction, target), torch.nn.functional.l1_loss(prediction, target))


def test_clamped_loss_is_l1_near_the_surface():
    prediction, target = torch.randn(1000) * 0.05, torch.rand(1000) * 0.1 - 0.05
    assert torch.allclose(sdf_loss(prediction, target, clamp=0.05), torch.nn.functional.l1_loss(prediction, target))


def test_clamped_loss_accepts_far_values_between_the_floor_and_the_truth():
    target = torch.tensor([0.8, -0.8, 0.8, -0.8])
    inside = torch.tensor([0.5, -0.5, 0.8, -0.41])
    assert float(sdf_loss(inside, target, clamp=0.05, far_floor=0.5)) == 0.0
    # below the floor, beyond the truth and on the wrong side all cost their distance to [0.4, 0.8]
    outside = torch.tensor([0.3, -0.9, -0.2, 0.1])
    expected = (0.1 + 0.1 + 0.6 + 0.5) / 4
    assert float(sdf_loss(outside, target, clamp=0.05, far_floor=0.5)) == pytest.approx(expected)


def test_clamped_loss_pulls_a_wrong_sign_back_however_far_it_is():
    prediction = torch.tensor([-3.0, 3.0], requires_grad=True)
    sdf_loss(prediction, torch.tensor([0.5, -0.5]), clamp=0.05).backward()
    assert prediction.grad[0] < 0 < prediction.grad[1]  # descent raises the first, lowers the second


def test_learning_rate_warms_up_then_decays_to_one_percent():
    assert learning_rate_at(0.0, 1.0) == pytest.approx(0.01)
    assert learning_rate_at(0.03, 1.0) == pytest.approx(1.0)
    assert learning_rate_at(1.0, 1.0) == pytest.approx(0.01)


@pytest.mark.parametrize(
    "train",
    [
        TrainConfig(loss_clamp=0.0),
        TrainConfig(loss_clamp=-1.0),
        TrainConfig(loss_clamp=0.1, far_floor=1.5),
        TrainConfig(average_tail=1.0),
    ],
)
def test_options_reject_bad_loss_settings(train):
    with pytest.raises(KscInputError):
        EncodeOptions(train=train)


def test_average_tail_keeps_the_mean_of_the_last_steps():
    import numpy as np

    from ksc.config import ModelConfig
    from ksc.model import KeySphereNet
    from ksc.sampling import SdfSamples
    from ksc.train import fit

    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (500, 3)).astype(np.float32)
    samples = SdfSamples(points, (0.5 - np.linalg.norm(points, axis=1)).astype(np.float32))
    torch.manual_seed(0)
    model = KeySphereNet(ModelConfig(spheres=4, layers=2, width=8), torch.rand(4, 4) * 0.3)
    seen = []
    fit(
        model,
        samples,
        TrainConfig(steps=20, batch_size=64, average_tail=0.5),
        torch.Generator().manual_seed(0),
        torch.device("cpu"),
        on_step=lambda step, loss: seen.append([p.detach().clone() for p in model.parameters()]),
    )
    for k, parameter in enumerate(model.parameters()):
        mean = torch.stack([snapshot[k] for snapshot in seen[10:]]).mean(dim=0)
        assert torch.allclose(parameter, mean, atol=1e-6)
        assert not torch.allclose(parameter, seen[-1][k])
