import json

import numpy as np
import torch

from cifarlab.experiments.run import run_recipe
from cifarlab.training.lr_finder import suggest_lr


def test_suggestion_is_where_the_loss_falls_fastest():
    lrs = np.logspace(-5, 0, 50)
    # A loss that is flat, drops steeply around lr=1e-2, then blows up.
    losses = 2.0 - np.tanh((np.log10(lrs) + 2) * 3) + np.where(lrs > 0.3, 50 * (lrs - 0.3), 0)
    suggested = suggest_lr(lrs, losses)
    assert 5e-3 < suggested < 2e-2


def test_lr_find_in_a_recipe_runs_the_range_test_and_records_the_lr(tiny_recipe):
    recipe = tiny_recipe(optim={"lr": "find"}, train={"epochs": 1})
    result = run_recipe(recipe)
    found = json.loads((result.run_dir / "lr_find.json").read_text())
    assert (result.run_dir / "lr_find.png").is_file()
    assert len(found["lr"]) == len(found["loss"]) > 10
    lr = float(__import__("yaml").safe_load((result.run_dir / "recipe.yaml").read_text())["optim"]["lr"])
    assert lr > 0 and abs(np.log10(lr) - np.log10(found["suggested_lr"])) < 0.01
    assert torch.isfinite(torch.tensor(found["loss"])).all()


def test_the_range_test_steps_like_the_run_precision_and_memory_format(tiny_recipe, monkeypatch):
    import cifarlab.training.lr_finder as lr_finder

    seen = set()
    real_step = lr_finder.training_step

    def recording_step(opt, inputs, *args):
        result = real_step(opt, inputs, *args)
        conv = next(m for m in opt.model.modules() if isinstance(m, torch.nn.Conv2d))
        seen.add((result.logits.dtype, conv.weight.is_contiguous(memory_format=torch.channels_last)))
        return result

    monkeypatch.setattr(lr_finder, "training_step", recording_step)
    run_recipe(tiny_recipe(optim={"lr": "find"}, train={"epochs": 1, "precision": "bf16", "channels_last": True}))
    assert seen == {(torch.bfloat16, True)}
