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
    with pytest.raises(CifarlabError, match=r"resnet18.*model.options=\{\}"):
        create("resnet18", widen=4)


def test_an_option_the_constructor_has_no_parameter_for_is_named_with_the_valid_ones():
    # The recipe's options kept after `model.name=` changed: name the stray one and what the model takes.
    with pytest.raises(CifarlabError) as info:
        create("airbench94", width_multiplier=0.5, dropout=0.1)
    message = str(info.value)
    assert "has no option dropout (its options: bn_momentum, depth, width_multiplier, widths)" in message
    assert "drop model.options.dropout from the recipe" in message and "model.options.width_multiplier" not in message


def test_create_passes_the_class_count_to_the_constructor():
    with torch.device("meta"):
        model = create("lenet", num_classes=7)
    assert model(torch.empty(1, 3, 32, 32, device="meta")).shape == (1, 7)


@pytest.fixture
def restored_registry():
    """Whatever a test registers is removed afterwards, so other tests see the shipped registry."""
    from cifarlab.models import registry

    names()  # the families are registered before the snapshot
    before = dict(registry._MODELS)
    yield registry
    registry._MODELS.clear()
    registry._MODELS.update(before)


def test_reloading_a_family_module_replaces_its_models(restored_registry):
    import importlib

    import cifarlab.models.lenet as lenet_module
    import cifarlab.models.resnet as resnet_module

    old_lenet, old_resnet = restored_registry._MODELS["lenet"], restored_registry._MODELS["resnet18"]
    importlib.reload(lenet_module)
    importlib.reload(resnet_module)  # its sizes are registered from a table, not by decorators
    assert restored_registry._MODELS["lenet"] is not old_lenet
    assert restored_registry._MODELS["resnet18"] is not old_resnet
    assert isinstance(create("lenet"), lenet_module.LeNet)
    assert isinstance(create("resnet18"), resnet_module.ResNet)


def test_running_the_same_registration_twice_replaces_it(restored_registry):
    from cifarlab.models import register_model

    def scratch_net(num_classes: int = 10):
        return torch.nn.Linear(3, num_classes)

    first = register_model(scratch_net)
    # A re-run notebook cell defines a new function object with the same module and name.
    second = register_model(type(scratch_net)(scratch_net.__code__, scratch_net.__globals__, "scratch_net"))
    assert first is not second
    assert restored_registry._MODELS["scratch_net"] is second


def test_another_function_under_a_taken_name_is_an_error_naming_both(restored_registry):
    from cifarlab.models import register_model

    def impostor(num_classes: int = 10):
        return torch.nn.Linear(3, num_classes)

    with pytest.raises(CifarlabError) as caught:
        register_model(impostor, name="lenet")
    message = str(caught.value)
    assert "cifarlab.models.lenet.lenet" in message
    assert "impostor" in message
    assert "name=" in message  # says how to register it under another name
    assert restored_registry._MODELS["lenet"].__module__ == "cifarlab.models.lenet"


def test_create_without_a_name_or_file_is_an_error_naming_the_fix():
    with pytest.raises(CifarlabError, match="cifarlab models"):
        create()
    with pytest.raises(CifarlabError, match="cifarlab export"):
        create("lenet", weights="lenet.npz")
