"""Two tiny real runs (LeNet, 200 CIFAR-10 images, 1 epoch, same data split, different learning rates)."""

import pytest

from cifarlab.config import recipe_from_dict
from cifarlab.runner.run import run_recipe
from tests.conftest import tiny_recipe_data

TINY = tiny_recipe_data(seed=0)


def _train(out_dir, name: str, lr: float):
    recipe = recipe_from_dict({**TINY, "name": name, "out_dir": str(out_dir), "optim": {"name": "sgd", "lr": lr}},
                              source="test")
    result = run_recipe(recipe)
    assert result.status == "finished"
    return result.run_dir


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory, cifar10):
    """Folders of two finished runs that differ only in their learning rate (so their weights differ)."""
    out_dir = tmp_path_factory.mktemp("analysis_runs")
    return _train(out_dir, "slow", 0.01), _train(out_dir, "fast", 0.1)
