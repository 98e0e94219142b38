"""VGG-A of the BatchNorm study: its documented parameter count, BN after every convolution, widths scale."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.models.summary import count_parameters


def test_vgg_a_has_the_parameter_count_its_docstring_gives():
    # VGG-11 convolutions with bias (9,220,480) + Linear 512-512 twice (262,656 each) + Linear 512-10 (5,130).
    assert count_parameters(create("vgg_a", num_classes=10)) == 9_750_922


def test_vgg_a_bn_puts_batchnorm_after_every_convolution_and_adds_only_its_parameters():
    plain, normalised = create("vgg_a"), create("vgg_a_bn")
    layers = list(normalised.features)
    convs = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d)]
    assert len(convs) == 8 and not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    assert all(isinstance(layers[i + 1], nn.BatchNorm2d) for i in convs)
    bn_parameters = sum(2 * layers[i].out_channels for i in convs)
    assert count_parameters(normalised) == count_parameters(plain) + bn_parameters
    linears = [m for m in plain.classifier if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(512, 512), (512, 512), (512, 10)]


def test_vgg_a_maps_cifar_images_to_class_logits_at_any_width_and_activation():
    torch.manual_seed(0)
    images = torch.randn(2, 3, 32, 32)
    for name in ("vgg_a", "vgg_a_bn"):
        model = create(name, num_classes=100, width_multiplier=0.125, activation="gelu")
        assert model(images).shape == (2, 100)
        kinds = {type(m) for m in model.modules()}
        assert nn.GELU in kinds and nn.ReLU not in kinds
    quarter = create("vgg_a", width_multiplier=0.25)
    assert [m.out_channels for m in quarter.features if isinstance(m, nn.Conv2d)] == [16, 32, 64, 64, 128, 128, 128, 128]


def test_a_width_multiplier_that_is_not_positive_is_a_user_error():
    with pytest.raises(CifarlabError, match="width_multiplier"):
        create("vgg_a", width_multiplier=0)
