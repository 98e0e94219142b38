"""The fast100 time ladder: each rung is fast94_progressive on CIFAR-100 with only the keys it says it changes,
and a tiny version of it trains on real CIFAR-100."""

import json

import pytest

from cifarlab.config import load_recipe
from cifarlab.config.flatten import differing_keys, recipe_values
from cifarlab.runner.run import run_recipe

LADDER = {"fast100_15min": {"name", "description", "data.dataset", "train.epochs", "augment.progressive_epochs",
                            "schedule.peak_epoch", "model.whiten_bias_epochs"}}


@pytest.mark.parametrize("name, changed", LADDER.items())
def test_a_rung_changes_only_what_it_says_and_keeps_fast94s_proportions(name, changed):
    rung, base = load_recipe(name), load_recipe("fast94_progressive")
    assert set(differing_keys(recipe_values(base), recipe_values(rung))) == changed
    assert rung.data.dataset == "cifar100" and rung.data.full_train
    assert rung.schedule.peak_epoch == pytest.approx(0.23 * rung.train.epochs, abs=0.01)
    assert rung.augment.progressive_epochs < rung.train.epochs


@pytest.mark.slow
@pytest.mark.parametrize("name", LADDER)
def test_a_tiny_version_of_a_rung_trains_on_cifar100_at_both_sizes(name, tmp_path):
    # 1,024 images (about 10 a class) in batches of 512: 2 steps an epoch, 5 epochs at 24 px then 1 at 32 px.
    recipe = load_recipe(name, ["data.train_limit=1024", "train.epochs=6", "eval.tta=none", f"out_dir={tmp_path}",
                                "log.sinks=[jsonl]", "train.threads=1"])
    result = run_recipe(recipe)
    epochs = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4, 5, 6]
    assert result.test["num_classes"] == 100 and result.test["num_images"] == 10000
    assert 0.0 < result.test["top1"] < 0.2  # a few steps on 10 images a class: above nothing, far from trained
