"""Before a run: a batch that cannot fit is refused with one that does."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cifarlab.config import recipe_from_dict
from cifarlab.errors import CifarlabError
from cifarlab.training import memory_fit


def recipe(batch_size: int, accumulate: int = 1):
    return recipe_from_dict({"train": {"batch_size": batch_size, "accumulate": accumulate, "device": "cpu"}})


def small_net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 32 * 32, 10))


def test_batch_larger_than_the_training_set_is_refused_with_one_that_fits():
    with pytest.raises(CifarlabError, match=r"train\.batch_size=100000 is larger than the 500 training images; "
                                            r"use train\.batch_size=256 \(at most 500\)"):
        memory_fit.check_fits(recipe(100_000), 500, small_net(), 32)


def test_activation_bytes_count_every_layer_output_and_leave_the_model_untouched():
    net = small_net().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    per_image = memory_fit.activation_bytes_per_image(net, (3, 32, 32))
    conv, bn, relu, flat, linear = 8 * 32 * 32, 8 * 32 * 32, 8 * 32 * 32, 8 * 32 * 32, 10
    assert per_image == 4 * (conv + bn + relu + flat + linear)
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_batch_beyond_free_memory_is_refused_and_the_suggested_batch_fits():
    net = small_net()
    free = memory_fit.available_bytes(torch.device("cpu"))
    if free is None:
        pytest.skip("this system does not report its free memory")
    per_image = memory_fit.activation_bytes_per_image(net, 32)
    too_many = int(2 * free / (memory_fit.BACKWARD_FACTOR * per_image))  # twice what the machine holds
    with pytest.raises(CifarlabError, match=r"needs about .* GiB on cpu .* use train\.batch_size=(\d+) or less") as info:
        memory_fit.check_fits(recipe(too_many), 10 * too_many, net, 32)
    suggested = int(info.value.args[0].split("use train.batch_size=")[1].split()[0])
    memory_fit.check_fits(recipe(suggested), 10 * too_many, net, 32)  # the suggestion is accepted
    memory_fit.check_fits(recipe(128), 50_000, net, 32)  # an ordinary batch passes
