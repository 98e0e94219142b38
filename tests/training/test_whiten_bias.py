"""model.whiten_bias_epochs: airbench's whitening bias trains for its epochs, then stays frozen (and resumes so)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from cifarlab.config.recipe import ModelConfig
from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.runner.run import run_recipe
from cifarlab.training.callbacks import Callback
from cifarlab.training.freezing import WhitenBiasFreezing, freezing_callbacks


class BiasProbe(Callback):
    """Per step: did the whitening bias get a gradient, and did the step move it."""

    def __init__(self):
        self.steps: list[tuple[int, bool, bool]] = []

    def on_start(self, trainer, total_steps: int, start_step: int) -> None:
        self.before = trainer.model.whiten.bias.detach().clone()

    def on_step(self, trainer, step) -> None:
        bias = trainer.model.whiten.bias
        moved = not torch.equal(bias, self.before)
        self.steps.append((step.step, bias.grad is not None, moved))
        self.before = bias.detach().clone()


def test_the_bias_trains_for_its_epochs_then_neither_gets_gradients_nor_moves(tiny_recipe):
    recipe = tiny_recipe(model={"init": "airbench", "whiten_bias_epochs": 1},
                         optim={"weight_decay": 5e-4, "momentum": 0.9})  # momentum and decay must not move it either
    probe = BiasProbe()
    result = run_recipe(recipe, callbacks=[probe])
    assert result.status == "finished"
    per_epoch = len(probe.steps) // 2
    first, second = probe.steps[:per_epoch], probe.steps[per_epoch:]
    assert all(moved for _, _, moved in first)
    # The probe runs after the freezing callback, which drops the gradient at the epoch's last step.
    assert all(gradient for _, gradient, _ in first[:-1]) and not first[-1][1]
    assert second and not any(gradient or moved for _, gradient, moved in second)
    assert not result.model.whiten.bias.requires_grad


def _trainer(model, steps_per_epoch=10):
    return SimpleNamespace(model=model, steps_per_epoch=steps_per_epoch, place=SimpleNamespace(world_size=1),
                           progress=SimpleNamespace(step=0), recipe=SimpleNamespace(model=ModelConfig(name="lenet")))


def test_a_resumed_run_starts_with_the_bias_frozen_or_training_as_its_step_calls_for():
    early = create("airbench94")
    WhitenBiasFreezing(3).on_start(_trainer(early), total_steps=80, start_step=29)
    assert early.whiten.bias.requires_grad
    late = create("airbench94")
    WhitenBiasFreezing(3).on_start(_trainer(late), total_steps=80, start_step=30)
    assert not late.whiten.bias.requires_grad


def test_the_setting_is_asked_for_by_the_recipe_and_needs_an_airbench_model():
    assert freezing_callbacks(ModelConfig()) == []
    [callback] = freezing_callbacks(ModelConfig(name="airbench94", whiten_bias_epochs=3))
    assert isinstance(callback, WhitenBiasFreezing) and callback.epochs == 3
    with pytest.raises(CifarlabError, match=r"model\.whiten_bias_epochs needs an airbench model .* not lenet; remove"):
        callback.on_start(_trainer(create("lenet", num_classes=10)), total_steps=10, start_step=0)
