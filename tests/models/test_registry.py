"""The model registry: every zoo name is there, and a wrong name or option ends in a clear error."""

from __future__ import annotations

import pytest
import torch

from cifarlab.errors import CifarlabError
from cifarlab.models import create, names

ZOO_NAMES = [
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "preact_resnet18", "preact_resnet34", "preact_resnet50", "preact_resnet101", "preact_resnet152",
    "wrn_16_8", "wrn_28_10",
    "resnext29_2x32d", "resnext29_2x64d", "resnext29_4x64d", "resnext29_8x64d", "resnext29_32x4d",
    "resnext50_2x40d", "resnext50_8x14d", "resnext50_32x4d",
    "densenet121", "densenet161", "densenet169", "densenet201", "densenet_cifar",
    "dpn26", "dpn92", "dla", "simple_dla",
    "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
    "resnet9", "convnet5", "lenet",
]  # fmt: skip


def test_names_lists_every_zoo_model():
    registered = set(names())
    assert [name for name in ZOO_NAMES if name not in registered] == []


def test_names_are_sorted_and_unique():
    listed = names()
    assert listed == sorted(set(listed))


def test_unknown_name_is_an_error_listing_close_names():
    with pytest.raises(CifarlabError) as caught:
        create("resnet81")
    message = str(caught.value)
    assert "'resnet81'" in message
    assert "resnet18" in message
    assert "cifarlab models" in message  # says how to see every name


def test_unknown_option_is_an_error_naming_the_model():
    with pytest.raises(CifarlabError, match="resnet18"):
        create("resnet18", widen=4)


def test_create_passes_the_class_count_to_the_constructor():
    with torch.device("meta"):
        model = create("lenet", num_classes=7)
    assert model(torch.empty(1, 3, 32, 32, device="meta")).shape == (1, 7)
