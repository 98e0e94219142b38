"""The report's parameter and multiply-add counts, for models the meta device can build and for those it cannot."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

from cifarlab.config import recipe_from_dict
from cifarlab.models import create, registry
from cifarlab.models.summary import count_parameters, multiply_adds
from cifarlab.reports.run_table import model_size


def data_dependent_net(num_classes: int = 10) -> nn.Module:
    """Sizes its head from a value it computes while being built, which the meta device cannot give."""
    hidden = int(torch.arange(4).sum().item()) + 2  # .item() on a meta tensor raises
    return nn.Sequential(nn.Conv2d(3, hidden, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(hidden, num_classes))


def _run(model_name: str) -> SimpleNamespace:
    recipe = recipe_from_dict({"model": {"name": model_name}})
    return SimpleNamespace(recipe=recipe, evaluations={"test": {"num_classes": 10}}, checkpoints=[])


def test_a_model_the_meta_device_cannot_build_is_counted_on_the_cpu(monkeypatch):
    # Registered for this test only: undoing setitem removes the name again, while the zoo's own
    # entries (registered lazily, possibly during this test) stay in the one registry.
    monkeypatch.setitem(registry._MODELS, "test_data_dependent_net", data_dependent_net)
    with torch.device("meta"):
        try:
            data_dependent_net()
            raise AssertionError("the meta device built it: this test no longer covers the fallback")
        except (RuntimeError, NotImplementedError):
            pass
    size = model_size(_run("test_data_dependent_net"))
    real = create("test_data_dependent_net", num_classes=10)
    assert size == {"params": count_parameters(real), "macs": multiply_adds(real, (3, 32, 32))}
    assert size["params"] > 0 and size["macs"] > 0


def test_a_zoo_model_is_counted_on_the_meta_device_as_on_the_cpu():
    size = model_size(_run("lenet"))
    real = create("lenet", num_classes=10)
    assert size == {"params": count_parameters(real), "macs": multiply_adds(real, (3, 32, 32))}
