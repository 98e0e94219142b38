"""One tiny sweep (2 models x 2 seeds on a 200-image slice of CIFAR-10), run once and read by several tests."""

import pytest
import yaml

from cifarlab.cli import main

TINY = {
    "name": "tiny", "seed": 0,
    "data": {"dataset": "cifar10", "val_size": 100, "train_limit": 200},
    "model": {"name": "lenet"},
    "optim": {"name": "sgd", "lr": 0.05},
    "train": {"epochs": 1, "batch_size": 32, "log_every": 2, "device": "cpu"},
    "eval": {"test": True},
}
GRID = ["model.name=lenet,convnet5", "seed=0,1"]
RUN_NAMES = ["lenet_seed0", "lenet_seed1", "convnet5_seed0", "convnet5_seed1"]


@pytest.fixture(scope="session")
def recipe_file(tmp_path_factory, cifar10):
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


@pytest.fixture(scope="session")
def zoo_sweep(tmp_path_factory, recipe_file):
    """The sweep folder of `cifarlab sweep tiny.yaml --grid model.name=lenet,convnet5 seed=0,1`; tests only read it."""
    out = tmp_path_factory.mktemp("sweep") / "zoo"
    assert main(["sweep", str(recipe_file), "--grid", *GRID, "--out", str(out)]) == 0
    return out
