import math

import pytest
import torch

from ksc.errors import KscFormatError, KscInputError
from ksc.models.config import ACTIVATION_NAMES, ModelConfig
from ksc.models.network import ACTIVATIONS, KeySphereNet


def paper_parameter_count(m: int, k: int, q: int) -> int:
    """Paper eq. 4, written out as printed."""
    return m * 4 + 29 * 4 + q * k + 30 + q * q * (k - 1) + (q + 1) * 32


def test_papers_network_stores_7026_parameters():
    model = KeySphereNet(ModelConfig(spheres=128, layers=6, width=32, frequencies=0, feature_dim=29), torch.rand(128, 4))
    assert model.stored_parameter_count() == 7026 == paper_parameter_count(128, 6, 32)


def test_default_network_stores_about_the_papers_count():
    """ksc 0.12's default (Fourier features, 8 sphere features, 5 x 34, 64 spheres) stays near the paper's budget."""
    model = KeySphereNet(ModelConfig(), torch.rand(64, 4))
    assert model.stored_parameter_count() == 6723 == 6979 - 64 * 4  # ksc 0.10 and 0.11: 128 spheres
    assert model.sphere_layer.weight.shape == (8, 4) and model.hidden[0].weight.shape == (34, 3 + 36 + 8)


def test_fourier_features_widen_only_the_first_layer():
    paper = KeySphereNet(ModelConfig(spheres=8, width=16, frequencies=0), torch.rand(8, 4))
    fourier = KeySphereNet(ModelConfig(spheres=8, width=16, frequencies=3), torch.rand(8, 4))
    assert fourier.hidden[0].weight.shape == (16, 3 + 6 * 3 + 8)
    assert fourier.stored_parameter_count() - paper.stored_parameter_count() == 16 * 6 * 3


def test_fourier_features_follow_the_specified_order():
    model = KeySphereNet(ModelConfig(spheres=2, frequencies=2), torch.rand(2, 4))
    point = torch.tensor([[0.25, -0.5, 0.125]])
    features = torch.cat(model.fourier_features(point), dim=1)[0]
    expected = []
    for k in range(2):  # format/SPEC.md: per octave the three sines, then the three cosines
        angle = math.pi * 2**k * point[0]
        expected += [*torch.sin(angle), *torch.cos(angle)]
    assert torch.allclose(features, torch.stack(expected))
    assert model(point).shape == (1,)


def test_latent_branch_stores_sphere_latents_instead_of_the_sphere_layer():
    direct = KeySphereNet(ModelConfig(spheres=64), torch.rand(64, 4)).stored_parameter_count()
    latent = KeySphereNet(ModelConfig(spheres=64, features="latent"), torch.rand(64, 4)).stored_parameter_count()
    assert latent - direct == 64 * 8 - (4 * 8 + 8)
    wide = KeySphereNet(ModelConfig(spheres=64, features="latent", feature_dim=29), torch.rand(64, 4))
    assert wide.latents.shape == (64, 29)


def test_forward_shape_and_paper_weights_sum_to_one():
    spheres = torch.tensor([[0.0, 0.0, 0.0, 0.5], [0.5, 0.0, 0.0, 0.2]])
    model = KeySphereNet(ModelConfig(spheres=2, layers=2, width=8), spheres)
    points = torch.rand(10, 3)
    assert model(points).shape == (10,)
    d = torch.cdist(points, spheres[:, :3]) + 2 * spheres[:, 3]
    assert torch.allclose(model.sphere_weights(points), d / d.sum(1, keepdim=True))


def test_point_features_are_the_weighted_sum_of_sphere_features(weighting="paper"):
    model = KeySphereNet(ModelConfig(spheres=16, layers=1, width=4, weighting=weighting), torch.rand(16, 4) * 0.5)
    points = torch.rand(50, 3) * 2 - 1
    expected = model.sphere_weights(points) @ model.sphere_features()
    assert torch.allclose(model.point_features(points), expected, atol=1e-6)


@pytest.mark.parametrize("weighting", ["inverse", "inverse_square"])
def test_old_files_weightings_are_not_fitted(weighting):
    """Only read from files before ksc 0.14; the runtimes' reading of them is the network contract's."""
    with pytest.raises(KscInputError, match=f"weighting '{weighting}' is only read"):
        KeySphereNet(ModelConfig(spheres=2, layers=1, width=4, weighting=weighting), torch.rand(2, 4))


def test_stored_tensors_load_by_name_and_check_shapes():
    a = KeySphereNet(ModelConfig(spheres=4, layers=2, width=8), torch.rand(4, 4))
    b = KeySphereNet(ModelConfig(spheres=4, layers=2, width=8), torch.rand(4, 4))
    b.load_stored_tensors(a.stored_tensors())
    points = torch.rand(5, 3)
    assert torch.equal(a(points), b(points))
    tensors = dict(a.stored_tensors())
    tensors["output.bias"] = torch.zeros(2)
    with pytest.raises(KscFormatError, match="output.bias"):
        b.load_stored_tensors(tensors)
    del tensors["output.bias"]
    with pytest.raises(KscFormatError, match="missing"):
        b.load_stored_tensors(tensors)


@pytest.mark.parametrize(
    "field,value",
    [("spheres", 0), ("layers", 100), ("width", "32"), ("features", "x"), ("weighting", "nearest"), ("frequencies", 17)],
)
def test_config_rejects_bad_values(field, value):
    with pytest.raises(KscInputError, match=field):
        ModelConfig(**{field: value})


def test_config_round_trips():
    config = ModelConfig(features="latent", spheres=7, layers=3, width=9, activation="relu", weighting="inverse", frequencies=3)
    assert ModelConfig.from_dict(config.to_dict()) == config


def test_every_configurable_activation_exists():
    assert tuple(ACTIVATIONS) == ACTIVATION_NAMES
