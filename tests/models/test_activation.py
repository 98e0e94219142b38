"""The `activation` option: one choice replaces every activation of a zoo model, and ReLU stays the default."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.models.layers import ACTIVATIONS, make_activation
from cifarlab.models.summary import count_parameters

PINNED_LENET_LOGITS = [0.01536015, 0.03534590, 0.01312990, 0.07755727]
ACTIVATION_TYPES = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU)
# (model, the activation it has by default)
FAMILIES = [
    ("lenet", nn.ReLU), ("convnet5", nn.LeakyReLU), ("resnet18", nn.ReLU), ("resnet50", nn.ReLU),
    ("preact_resnet18", nn.ReLU), ("preact_resnet50", nn.ReLU), ("resnext29_2x32d", nn.ReLU),
    ("vgg11", nn.ReLU), ("vgg11_bn", nn.ReLU), ("densenet_cifar", nn.ReLU), ("dla", nn.ReLU),
    ("simple_dla", nn.ReLU), ("dpn26", nn.ReLU), ("wrn_16_8", nn.ReLU), ("resnet9", nn.ReLU),
]  # fmt: skip


def activation_calls(model: nn.Module) -> Counter:
    """How many times each activation type runs in one forward pass of a 32x32 image (on the meta device)."""
    calls: Counter = Counter()
    hooks = [
        module.register_forward_hook(lambda module, inputs, output: calls.update([type(module)]))
        for module in model.modules()
        if isinstance(module, ACTIVATION_TYPES)
    ]
    model(torch.empty(1, 3, 32, 32, device="meta"))
    for hook in hooks:
        hook.remove()
    return calls


def build_on_meta(name: str, **options) -> nn.Module:
    with torch.device("meta"):
        return create(name, **options)


def check_replaced(name: str, default: type, activation: str) -> None:
    default_calls = activation_calls(build_on_meta(name))
    assert set(default_calls) == {default}
    chosen = build_on_meta(name, activation=activation)
    expected_type = type(make_activation(activation))
    assert activation_calls(chosen) == Counter({expected_type: default_calls[default]})
    assert count_parameters(chosen) == count_parameters(build_on_meta(name))


@pytest.mark.parametrize("name,default", FAMILIES)
def test_gelu_replaces_every_activation_call_of_each_family(name, default):
    check_replaced(name, default, "gelu")


@pytest.mark.parametrize("activation", ["leaky_relu", "elu", "silu"])
def test_each_choice_replaces_every_activation_call(activation):
    check_replaced("resnet18", nn.ReLU, activation)
    check_replaced("convnet5", nn.LeakyReLU, "relu" if activation == "leaky_relu" else activation)


def test_the_chosen_activation_changes_the_logits_of_the_same_weights():
    torch.manual_seed(0)
    relu_net = create("resnet18").eval()
    gelu_net = create("resnet18", activation="gelu").eval()
    gelu_net.load_state_dict(relu_net.state_dict())
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        assert not torch.allclose(relu_net(images), gelu_net(images), atol=1e-3)


def test_default_relu_outputs_are_the_pinned_reference_values():
    # LeNet at seed 0 on a seeded image batch: these logits were recorded before the activation
    # option existed; an unchanged default must reproduce them.
    torch.manual_seed(0)
    model = create("lenet").eval()
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        logits = model(images)
    assert torch.allclose(logits[0, :4], torch.tensor(PINNED_LENET_LOGITS), atol=1e-5)


def test_unknown_activation_is_an_error_listing_the_choices():
    with pytest.raises(CifarlabError) as caught:
        create("resnet18", activation="swish")
    message = str(caught.value)
    assert "'swish'" in message
    assert all(choice in message for choice in ACTIVATIONS)
