import json

import numpy as np
import pytest
import torch
import yaml

from cifarlab.runner.run import run_recipe
from cifarlab.sweeps.sweep_point import check_same_recipe
from cifarlab.training.lr_finder import LR_MIN_FALLBACK, LR_MIN_RULE, choose_bounds, steepest_descent_lr

LRS = np.logspace(-5, 0, 50)
# A loss that is flat, drops steeply around lr=1e-2, then blows up.
LOSSES = 2.0 - np.tanh((np.log10(LRS) + 2) * 3) + np.where(LRS > 0.3, 50 * (LRS - 0.3), 0)


def test_lr_max_is_where_the_loss_falls_fastest():
    assert 5e-3 < steepest_descent_lr(LRS, LOSSES) < 2e-2


def test_lr_min_is_where_the_loss_starts_to_fall():
    found = choose_bounds(list(LRS), list(LOSSES))
    assert 5e-3 < found.lr_max < 2e-2 and found.lr_min_rule == LR_MIN_RULE
    # tanh falls by a tenth of its whole drop (0.2 of 2) where tanh(3 (log10 lr + 2)) = -0.8, near lr 4.3e-3.
    assert 2e-3 < found.lr_min < 5e-3 and found.lr_min < found.lr_max
    start = np.median(LOSSES[:5])  # the first tenth of the 50 points
    threshold = start - 0.1 * (start - LOSSES.min())
    at = int(np.argmin(abs(LRS - found.lr_min)))
    assert LOSSES[at] <= threshold < LOSSES[at - 1]  # the first lr that has fallen that far


def test_a_loss_that_never_falls_gives_lr_min_a_tenth_of_lr_max():
    found = choose_bounds(list(LRS[:10]), list(np.linspace(2.0, 3.0, 10)))
    assert found.lr_min == pytest.approx(found.lr_max / 10) and found.lr_min_rule == LR_MIN_FALLBACK


@pytest.mark.slow
def test_lr_find_in_a_recipe_runs_the_range_test_and_records_the_lr(tiny_recipe):
    recipe = tiny_recipe(optim={"lr": "find"}, train={"epochs": 1})
    result = run_recipe(recipe)
    found = json.loads((result.run_dir / "lr_find.json").read_text())
    assert (result.run_dir / "lr_find.png").is_file()
    assert len(found["lrs"]) == len(found["smoothed_losses"]) > 10
    saved = yaml.safe_load((result.run_dir / "recipe.yaml").read_text())
    lr = float(saved["optim"]["lr"])
    assert lr > 0 and abs(np.log10(lr) - np.log10(found["lr_max"])) < 0.01
    assert torch.isfinite(torch.tensor(found["smoothed_losses"])).all()
    # One-Cycle starts at the found lower bound ("LRMIN = FIND"): peak / div_factor = lr_min.
    assert 0 < found["lr_min"] < found["lr_max"] and found["lr_min_rule"] and found["lr_max_rule"]
    assert float(saved["schedule"]["div_factor"]) == pytest.approx(found["lr_max"] / found["lr_min"], rel=0.01)
    check_same_recipe(recipe, result.run_dir)  # a sweep still knows the run as its own: both numbers were settled by the test


@pytest.mark.slow
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
