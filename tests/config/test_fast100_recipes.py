"""The fast100 time ladder: fast100_15min is fast94_progressive on CIFAR-100 with airbench96's groups, the
longer rungs extend it with only the keys they say they change, and a tiny version of fast100 trains on real
CIFAR-100."""

import json

import pytest

from cifarlab.config import load_recipe
from cifarlab.config.flatten import differing_keys, recipe_values
from cifarlab.runner.run import run_recipe

LENGTH = {"name", "description", "train.epochs", "augment.progressive_epochs", "schedule.peak_epoch",
          "model.whiten_bias_epochs"}
# Each rung against the recipe it extends: the keys it changes and nothing else.
LADDER = {"fast100_15min": ("fast94_progressive", {"name", "description", "data.dataset", "model.options.depth",
                                                   "train.epochs", "schedule.peak_epoch"}),
          "fast100_30min": ("fast100_15min", LENGTH),
          "fast100": ("fast100_15min", LENGTH | {"augment.cutout", "augment.crop_padding"})}


@pytest.mark.parametrize("name", LADDER)
def test_a_rung_changes_only_what_it_says_and_keeps_fast94s_proportions(name):
    parent, changed = LADDER[name]
    rung = load_recipe(name)
    assert set(differing_keys(recipe_values(load_recipe(parent)), recipe_values(rung))) == changed
    assert rung.data.dataset == "cifar100" and rung.data.full_train and rung.model.options == {"depth": 3}
    assert rung.schedule.peak_epoch == pytest.approx(0.23 * rung.train.epochs, abs=0.01)
    # fast94_progressive's 4 of 9 epochs at 24 px and 3 of 9 with the whitening bias, to the nearest epoch or up
    assert rung.augment.progressive_epochs == pytest.approx(rung.train.epochs * 4 / 9, abs=0.99)
    assert rung.model.whiten_bias_epochs == pytest.approx(rung.train.epochs * 3 / 9, abs=0.99)


@pytest.mark.slow
def test_a_tiny_version_of_fast100_trains_on_cifar100_at_both_sizes(tmp_path):
    # The rungs differ only in lengths and fast100's augmentation (checked above): one tiny run covers them.
    # 1,024 images (about 10 a class) in batches of 512: 2 steps an epoch, 5 epochs at 24 px then 1 at 32 px.
    recipe = load_recipe("fast100", ["data.train_limit=1024", "train.epochs=6", "augment.progressive_epochs=5",
                                "eval.tta=none", f"out_dir={tmp_path}", "log.sinks=[jsonl]", "train.threads=1"])
    result = run_recipe(recipe)
    epochs = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
              if json.loads(line)["kind"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4, 5, 6]
    assert result.test["num_classes"] == 100 and result.test["num_images"] == 10000
    assert 0.0 < result.test["top1"] < 0.2  # a few steps on 10 images a class: above nothing, far from trained
