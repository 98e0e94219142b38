"""Fine-tuning controls: a frozen backbone that thaws at an epoch, and a slower backbone learning rate."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

pytest.importorskip("timm")

from cifarlab.config import recipe_from_dict
from cifarlab.config.recipe import ModelConfig, OptimConfig
from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.runner.run import run_recipe
from cifarlab.training.callbacks import Callback
from cifarlab.training.freezing import BackboneFreezing, backbone_parameters, freezing_callbacks
from cifarlab.training.optim import build_optimizer, set_lr


class GradientProbe(Callback):
    """Records, per step, whether the backbone and the head received gradients, and backbone weights per epoch."""

    def __init__(self):
        self.steps: list[tuple[int, bool, bool]] = []
        self.backbone_unchanged: dict[int, bool] = {}

    def on_start(self, trainer, total_steps, start_step):
        self.stem = trainer.model.conv1[0].weight
        self.stem_before = self.stem.detach().clone()
        self.head_before = trainer.model.get_classifier().weight.detach().clone()

    def on_step(self, trainer, step):
        model = trainer.model
        backbone_grads = [p.grad is not None for p in backbone_parameters(model)]
        head_grad = model.get_classifier().weight.grad is not None
        self.steps.append((step.step, any(backbone_grads), head_grad))

    def on_epoch(self, trainer, record):
        self.backbone_unchanged[record["epoch"]] = torch.equal(self.stem, self.stem_before)


def test_a_frozen_backbone_gets_no_gradient_until_its_epoch_then_trains(tmp_path, cifar10):
    recipe = recipe_from_dict({
        "name": "frozen", "out_dir": str(tmp_path / "runs"),
        "data": {"dataset": "cifar10", "val_size": 0, "train_limit": 100},
        "model": {"name": "timm/resnet10t", "options": {"stem_stride": 2}, "freeze": "backbone", "unfreeze_epoch": 1},
        "optim": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05},  # decay must not move frozen weights either
        "train": {"epochs": 2, "batch_size": 20, "device": "cpu", "channels_last": False},
        "eval": {"test": False},
        "log": {"sinks": []},
    }, source="test")
    probe = GradientProbe()
    result = run_recipe(recipe, dataset=cifar10, callbacks=[*freezing_callbacks(recipe.model), probe])
    assert result.status == "finished"
    first_epoch, second_epoch = probe.steps[:5], probe.steps[5:]
    assert len(second_epoch) == 5
    assert all(not backbone and head for _, backbone, head in first_epoch)
    assert all(backbone and head for _, backbone, head in second_epoch)
    assert probe.backbone_unchanged == {1: True, 2: False}
    assert not torch.equal(result.model.get_classifier().weight, probe.head_before)


def trainer_at(model, steps_per_epoch=10):
    return SimpleNamespace(model=model, steps_per_epoch=steps_per_epoch, place=SimpleNamespace(world_size=1))


def test_a_resumed_run_starts_frozen_or_thawed_as_its_epoch_calls_for():
    model = create("timm/resnet10t", num_classes=10)
    freezing = BackboneFreezing(unfreeze_epoch=2)
    freezing.on_start(trainer_at(model), total_steps=50, start_step=15)  # epoch 1 of 5: still frozen
    assert not any(p.requires_grad for p in backbone_parameters(model))
    assert all(p.requires_grad for p in model.get_classifier().parameters())
    thawed = create("timm/resnet10t", num_classes=10)
    BackboneFreezing(unfreeze_epoch=2).on_start(trainer_at(thawed), total_steps=50, start_step=25)
    assert all(p.requires_grad for p in thawed.parameters())


def test_thawing_leaves_a_layer_frozen_for_its_own_reasons_frozen():
    model = create("timm/resnet10t", num_classes=10)
    model.conv1[0].weight.requires_grad_(False)  # as airbench freezes its whitening layer
    freezing = BackboneFreezing(unfreeze_epoch=1)
    freezing.on_start(trainer_at(model), total_steps=20, start_step=0)
    freezing.on_epoch(trainer_at(model), {"epoch": 1})
    assert not model.conv1[0].weight.requires_grad
    assert model.layer1[0].conv1.weight.requires_grad


def test_freezing_is_asked_for_by_the_recipe_and_needs_a_model_that_names_its_head():
    assert freezing_callbacks(ModelConfig()) == []
    [callback] = freezing_callbacks(ModelConfig(freeze="backbone", unfreeze_epoch=3))
    assert isinstance(callback, BackboneFreezing) and callback.unfreeze_epoch == 3
    with pytest.raises(CifarlabError, match="model.freeze needs a model that names its classifier head"):
        callback.on_start(trainer_at(create("lenet", num_classes=10)), total_steps=10, start_step=0)


def test_backbone_lr_scale_gives_the_backbone_its_share_of_the_lr_after_set_lr():
    model = create("timm/resnet10t", num_classes=10, head="mlp", head_hidden=8)
    optimizer = build_optimizer(model, OptimConfig(name="adamw", backbone_lr_scale=0.1, bias_lr_scale=2.0), lr=1.0)
    set_lr(optimizer, 0.02)
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert sum(len(group["params"]) for group in optimizer.param_groups) == len(list(model.parameters()))
    head = model.get_classifier()
    assert lr_of[id(head[0].weight)] == pytest.approx(0.02) and lr_of[id(head[3].bias)] == pytest.approx(0.02)
    assert lr_of[id(model.layer2[0].conv1.weight)] == pytest.approx(0.002)
    assert lr_of[id(model.layer2[0].bn1.weight)] == pytest.approx(0.004)  # the norm scale applies on top


def test_backbone_lr_scale_on_a_model_without_a_named_head_is_an_error():
    with pytest.raises(CifarlabError, match="optim.backbone_lr_scale needs a model"):
        build_optimizer(create("lenet", num_classes=10), OptimConfig(backbone_lr_scale=0.1), lr=0.1)
