import pytest
import torch

from ksc.encoding.train import learning_rate_at, sdf_loss


def test_loss_is_plain_l1():
    prediction, target = torch.randn(1000), torch.randn(1000)
    assert torch.allclose(sdf_loss(prediction, target), torch.nn.functional.l1_loss(prediction, target))


def test_learning_rate_warms_up_then_decays_to_one_percent():
    assert learning_rate_at(0.0, 1.0) == pytest.approx(0.01)
    assert learning_rate_at(0.03, 1.0) == pytest.approx(1.0)
    assert learning_rate_at(1.0, 1.0) == pytest.approx(0.01)
