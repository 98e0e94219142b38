"""A tiny tuning setup: LeNet on a 300-image folder of real CIFAR-10 (250 to train, 50 to validate), 2 epochs.

The images form an image-folder dataset with its own decoded cache in a temporary folder, so a
trial loads in milliseconds and trains in about a second on one thread; tests that train set
CIFARLAB_CACHE there with the `tiny_cache` fixture.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import write_image_folder

TINY = {
    "name": "tiny", "seed": 0,
    "data": {"val_size": 50},
    "model": {"name": "lenet"},
    "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9},
    "train": {"epochs": 2, "batch_size": 25, "log_every": 2, "device": "cpu"},
    "eval": {"test": True},
}
# The learning rate spans terrible (1e-5: nothing moves; 10: the loss explodes) to good, so the median
# pruner stops some trials after their first epoch.
SPACE = {"optim.lr": {"low": 1.0e-5, "high": 10.0, "log": True}}
SAMPLER = {"name": "tpe", "seed": 0, "n_startup_trials": 3}
PRUNER = {"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0}


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory, cifar10):
    """(dataset name, cache folder) of a 30-train / 5-test images per class folder of real CIFAR-10."""
    root = tmp_path_factory.mktemp("tune_cifar")
    return write_image_folder(root, cifar10, 30, 5), root / "cache"


@pytest.fixture
def tiny_cache(tiny_folder, monkeypatch):
    monkeypatch.setenv("CIFARLAB_CACHE", str(tiny_folder[1]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # each training on one thread, workers included


@pytest.fixture(scope="session")
def recipe_file(tmp_path_factory, tiny_folder) -> Path:
    path = tmp_path_factory.mktemp("tune_recipe") / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "data": {**TINY["data"], "dataset": tiny_folder[0]}}))
    return path


def write_tune_file(folder: Path, recipe: Path, name: str = "tiny_tune", **changes) -> Path:
    """A tune file over the tiny recipe: the seeded lr search of SPACE over 6 trials, with `changes` on top."""
    content = {"recipe": str(recipe), "space": SPACE, "metric": "val.top1", "trials": 6,
               "sampler": SAMPLER, "pruner": PRUNER, **changes}
    path = Path(folder) / f"{name}.yaml"
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def seeded_study(tmp_path_factory, recipe_file, tiny_folder) -> Path:
    """The study folder of a seeded 6-trial `cifarlab tune` of the tiny recipe (median pruner); tests only read it."""
    from cifarlab.cli import main

    folder = tmp_path_factory.mktemp("tune")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CIFARLAB_CACHE", str(tiny_folder[1]))
        patch.setenv("OMP_NUM_THREADS", "1")
        assert main(["tune", str(write_tune_file(folder, recipe_file)), "--out", str(folder / "study")]) == 0
    return folder / "study"
