"""model.late_freeze: the named first layers train until model.late_freeze_epoch, then get no gradient and stay put."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from cifarlab.config.recipe import ModelConfig
from cifarlab.errors import CifarlabError
from cifarlab.experiments.run import run_recipe
from cifarlab.models import create
from cifarlab.training.callbacks import Callback
from cifarlab.training.freezing import LateFreezing, freezing_callbacks, parameters_under


class LayerProbe(Callback):
    """Per step: did the first conv group and the head get gradients, and did the step move them."""

    def _state(self, trainer) -> tuple[torch.Tensor, torch.Tensor]:
        return (trainer.model.groups[0].conv1.weight.detach().clone(), trainer.model.head.weight.detach().clone())

    def on_start(self, trainer, total_steps: int, start_step: int) -> None:
        self.steps: list[tuple[bool, bool, bool]] = []
        self.before = self._state(trainer)

    def on_step(self, trainer, step) -> None:
        first, head = self._state(trainer)
        self.steps.append((trainer.model.groups[0].conv1.weight.grad is not None,
                           not torch.equal(first, self.before[0]), not torch.equal(head, self.before[1])))
        self.before = (first, head)


def test_the_first_group_trains_until_its_epoch_then_gets_no_gradient_and_stays_while_the_rest_trains(tiny_recipe):
    recipe = tiny_recipe(model={"name": "airbench94", "init": "airbench", "late_freeze": ["groups.0"],
                                "late_freeze_epoch": 1},
                         optim={"weight_decay": 5e-4, "momentum": 0.9})  # momentum and decay must not move it either
    probe = LayerProbe()
    result = run_recipe(recipe, callbacks=[probe])
    assert result.status == "finished"
    per_epoch = len(probe.steps) // 2
    first, second = probe.steps[:per_epoch], probe.steps[per_epoch:]
    assert all(moved for _, moved, _ in first)
    # The probe runs after the freezing callback, which drops the gradient at the epoch's last step.
    assert all(gradient for gradient, _, _ in first[:-1]) and not first[-1][0]
    assert second and not any(gradient or moved for gradient, moved, _ in second)
    assert all(head_moved for _, _, head_moved in second)
    frozen = {name for name, p in result.model.named_parameters() if not p.requires_grad}
    assert {"groups.0.conv1.weight", "groups.0.conv2.weight", "groups.0.norm1.bias"} <= frozen
    # Outside groups.0 only what airbench freezes from the start: BatchNorm scales (and the whitening conv).
    later = {name for name in frozen if not name.startswith(("groups.0.", "whiten."))}
    assert later and all(".norm" in name and name.endswith(".weight") for name in later)


def _trainer(model, steps_per_epoch=10):
    return SimpleNamespace(model=model, steps_per_epoch=steps_per_epoch, place=SimpleNamespace(world_size=1),
                           progress=SimpleNamespace(step=0))


def test_a_resumed_run_starts_frozen_or_training_as_its_step_calls_for():
    early = create("airbench94")
    LateFreezing(["groups.0"], 2.5).on_start(_trainer(early), total_steps=80, start_step=24)
    assert early.groups[0].conv1.weight.requires_grad and early.groups[0].norm1.bias.requires_grad
    late = create("airbench94")
    LateFreezing(["groups.0"], 2.5).on_start(_trainer(late), total_steps=80, start_step=25)
    assert not any(p.requires_grad for p in late.groups[0].parameters())
    assert late.groups[1].conv1.weight.requires_grad and late.groups[1].norm1.bias.requires_grad


def test_a_prefix_takes_whole_names_only_and_one_that_names_nothing_lists_the_top_level_modules():
    model = create("airbench94")
    assert len(parameters_under(model, ["groups.0"])) == len(list(model.groups[0].parameters()))
    assert parameters_under(model, ["head.weight"]) == [model.head.weight]
    assert parameters_under(model, ["groups.0", "groups.0.conv1"]) == list(model.groups[0].parameters())  # no twice
    with pytest.raises(CifarlabError, match=r"'groups\.0\.conv' names no parameter of AirbenchNet; its top-level "
                                            r"modules are groups, head, whiten \(`cifarlab summary MODEL`"):
        parameters_under(model, ["groups.0.conv"])  # a prefix of conv1's name, but not a whole name
    callback = LateFreezing(["block1"], 4)
    with pytest.raises(CifarlabError, match=r"'block1' names no parameter"):
        callback.on_start(_trainer(create("airbench94")), total_steps=80, start_step=0)  # at the start, not epoch 4


def test_the_setting_is_asked_for_by_the_recipe_and_refuses_several_processes():
    assert freezing_callbacks(ModelConfig()) == []
    [callback] = freezing_callbacks(ModelConfig(name="airbench94", late_freeze=["groups.0"], late_freeze_epoch=4))
    assert isinstance(callback, LateFreezing) and callback.prefixes == ["groups.0"] and callback.epochs == 4
    trainer = _trainer(create("airbench94"))
    trainer.place.world_size = 2
    with pytest.raises(CifarlabError, match=r"model\.late_freeze trains in one process only"):
        callback.on_start(trainer, total_steps=80, start_step=0)
