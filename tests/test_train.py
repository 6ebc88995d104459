import pytest
import torch

from ksc.config import EncodeOptions, TrainConfig
from ksc.errors import KscInputError
from ksc.train import BatchSampler, learning_rate_at, sample_errors, sdf_loss


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
        TrainConfig(error_focus=-0.1),
        TrainConfig(error_focus=1.5),
        TrainConfig(truncation=0.0),
        TrainConfig(truncation=-0.1),
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


def test_unfocused_batches_are_the_plain_uniform_draws():
    """Files encoded without error focus keep their bytes: the sampler draws what randint drew."""
    sampler = BatchSampler(1000, 64, torch.Generator().manual_seed(3), torch.device("cpu"))
    expected = torch.Generator().manual_seed(3)
    for _ in range(3):
        assert torch.equal(sampler.draw(), torch.randint(1000, (64,), generator=expected))


def test_focused_batches_follow_the_errors():
    count, batch = 1000, 20000
    errors = torch.zeros(count)
    errors[7], errors[42] = 3.0, 1.0
    sampler = BatchSampler(count, batch, torch.Generator().manual_seed(0), torch.device("cpu"))
    sampler.focus(errors, share=1.0)
    drawn = torch.bincount(sampler.draw(), minlength=count)
    assert set(torch.nonzero(drawn).flatten().tolist()) == {7, 42}
    assert float(drawn[7]) / batch == pytest.approx(0.75, abs=0.02)
    sampler.focus(errors, share=0.5)  # half by error, half spread over all samples
    drawn = torch.bincount(sampler.draw(), minlength=count)
    assert float(drawn[7]) / batch == pytest.approx(0.375 + 0.5 / count, abs=0.02)
    assert int((drawn > 0).sum()) > 900


def test_focus_on_zero_errors_stays_uniform():
    """Even with the whole batch by error (share 1)."""
    sampler = BatchSampler(100, 5000, torch.Generator().manual_seed(0), torch.device("cpu"))
    sampler.focus(torch.zeros(100), share=1.0)
    drawn = torch.bincount(sampler.draw(), minlength=100)
    assert int(drawn.min()) > 20 and int(drawn.max()) < 90


def test_sample_errors_are_the_absolute_errors_at_every_point():
    from ksc.config import ModelConfig
    from ksc.model import KeySphereNet

    torch.manual_seed(0)
    model = KeySphereNet(ModelConfig(spheres=4, layers=2, width=8), torch.rand(4, 4) * 0.3)
    points, target = torch.rand(70000, 3) * 2 - 1, torch.rand(70000)  # more than one evaluation chunk
    with torch.no_grad():
        expected = (model(points) - target).abs()
    assert torch.allclose(sample_errors(model, points, target), expected, atol=1e-6)
