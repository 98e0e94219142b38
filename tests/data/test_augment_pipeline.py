"""Heavy augmentation inside the batch pipeline, a real training run with it, and `cifarlab data augment-grid`."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from PIL import Image

from cifarlab.cli import main
from cifarlab.config import recipe_from_dict
from cifarlab.config.recipe import AugmentConfig
from cifarlab.data.augment import augmix_js
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.errors import CifarlabError
from cifarlab.runner.run import run_recipe
from cifarlab.runs.checkpoint import load_checkpoint
from cifarlab.training.losses import register_loss

HEAVY = [{"name": "random_resized_crop", "p": 0.5}, {"name": "rotate", "p": 0.5, "degrees": 20},
         {"name": "color_jitter", "p": 0.5}, {"name": "gaussian_noise", "p": 0.3}, {"name": "jpeg", "p": 0.3},
         {"name": "clahe", "p": 0.2}, {"name": "random_erasing", "p": 0.25}]

register_loss("augmix_js")(augmix_js)  # the engine's registry takes the factory as it is


def _pipe(cifar10, augment: AugmentConfig, seed: int = 0) -> BatchPipeline:
    return BatchPipeline(cifar10.train_images[:256], cifar10.train_labels[:256], batch_size=64, num_classes=10,
                         mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), augment=augment, seed=seed)


def test_heavy_batches_are_a_function_of_seed_epoch_and_index(cifar10):
    augment = AugmentConfig(ops=HEAVY, policy="trivialaugment")
    first = [b.inputs for b in _pipe(cifar10, augment).epoch(1)]
    again = [b.inputs for b in _pipe(cifar10, augment).epoch(1, start=2)]
    assert torch.equal(first[2], again[0]) and torch.equal(first[3], again[1])
    other_seed = next(_pipe(cifar10, augment, seed=1).epoch(1)).inputs
    assert not torch.equal(first[0], other_seed)
    plain = next(_pipe(cifar10, AugmentConfig()).epoch(1)).inputs
    assert first[0].shape == plain.shape and not torch.equal(first[0], plain)


def test_augmix_js_yields_the_clean_image_then_two_views_of_it(cifar10):
    base = AugmentConfig(cutout=0)
    js = replace(base, policy="augmix", augmix_js=True)
    batch = next(_pipe(cifar10, js).epoch(0))
    plain = next(_pipe(cifar10, base).epoch(0))
    assert batch.inputs.shape[0] == 3 * 64
    assert torch.equal(batch.labels, plain.labels.repeat_interleave(3))
    rows = batch.inputs.view(64, 3, *batch.inputs.shape[1:])
    torch.testing.assert_close(rows[:, 0], plain.inputs)  # the clean rows are the crop-and-flip images
    assert not torch.equal(rows[:, 1], rows[:, 2])  # two different AugMix views


def test_a_bad_op_stops_the_recipe_before_anything_runs(tmp_path):
    with pytest.raises(CifarlabError, match=r"augment.ops\[1\].*unknown augmentation op 'blur'"):
        recipe_from_dict({"augment": {"ops": [{"name": "rotate"}, {"name": "blur"}]}})
    with pytest.raises(CifarlabError, match="train.loss=augmix_js"):
        recipe_from_dict({"augment": {"policy": "augmix", "augmix_js": True}})


def _tiny(tmp_path, name: str, **augment):
    return recipe_from_dict({
        "name": name, "out_dir": str(tmp_path / "runs"), "seed": 3,
        "data": {"dataset": "cifar10", "val_size": 100, "train_limit": 200},
        "augment": {"crop_padding": 2, **augment},
        "model": {"name": "airbench94", "options": {"widths": [8, 16, 16]}},
        "optim": {"name": "sgd", "lr": 0.05, "nesterov": True},
        "schedule": {"name": "onecycle", "peak_epoch": 1},
        "train": {"epochs": 2, "batch_size": 32, "log_every": 2, "device": "cpu",
                  "loss": "augmix_js" if augment.get("augmix_js") else "cross_entropy"},
        "eval": {"test": False, "batch_size": 200},
        "log": {"sinks": ["jsonl"]},
    }, source="test")


@pytest.mark.parametrize("augment", [
    {"ops": HEAVY, "policy": "randaugment"},
    {"ops": [{"name": "jpeg", "p": 0.5}], "policy": "augmix", "augmix_js": True},
], ids=["ops+randaugment", "augmix-js"])
@pytest.mark.slow
def test_a_run_with_heavy_augmentation_stops_and_resumes_bitwise_exactly(tmp_path, cifar10, augment):
    straight = run_recipe(_tiny(tmp_path, "straight", **augment))
    assert straight.status == "finished"
    stopped = run_recipe(_tiny(tmp_path, "stopped", **augment), stop_after=5)
    assert stopped.status == "stopped"
    resumed = run_recipe(_tiny(tmp_path, "stopped", **augment), resume=stopped.run_dir)
    assert resumed.status == "finished"
    a = load_checkpoint(straight.run_dir / "last.pt")["model"]
    b = load_checkpoint(resumed.run_dir / "last.pt")["model"]
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_augment_grid_writes_one_row_per_op_over_sample_images(tmp_path, capsys):
    out = tmp_path / "aug.png"
    code = main(["data", "augment-grid", "quick", "augment.ops=[{name: rotate, degrees: 30}, {name: jpeg, p: 0.3}]",
                 "augment.policy=trivialaugment", "--out", str(out), "--images", "5"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "rotate (p=0.5)" in printed and "jpeg (p=0.3)" in printed and "trivialaugment, all together" in printed
    width, height = Image.open(out).size
    rows = 5  # original, rotate, jpeg, trivialaugment, all together
    assert height == 14 + rows * 66 and width > 5 * 66
    assert sorted(p.name for p in tmp_path.iterdir()) == ["aug.png"]


def test_augment_grid_of_a_recipe_without_heavy_ops_exits_2_and_writes_nothing(tmp_path, capsys):
    code = main(["data", "augment-grid", "quick", "--out", str(tmp_path / "aug.png")])
    assert code == 2
    assert "no heavy augmentation" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_augment_grid_with_more_columns_than_a_figure_holds_exits_2_and_writes_nothing(tmp_path, capsys):
    code = main(["data", "augment-grid", "quick", "augment.ops=[{name: rotate}]", "--images", "101",
                 "--out", str(tmp_path / "aug.png")])
    assert code == 2
    assert "shows 1 to 100 images (columns), got --images 101" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_grid_samples_are_shuffled_images_of_different_classes(cifar10):
    from cifarlab.data.augment.augment_grid import sample_images

    picked = sample_images(cifar10.train_images, cifar10.train_labels, 8, seed=0)
    assert len(set(cifar10.train_labels[picked].tolist())) == 8
    assert not torch.equal(picked, sample_images(cifar10.train_images, cifar10.train_labels, 8, seed=1))
    assert len(sample_images(cifar10.train_images, cifar10.train_labels, 12, seed=0).unique()) == 12  # > classes
