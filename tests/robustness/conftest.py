"""Fixtures of the robustness tests: a small slice of real CIFAR-10 test images and one tiny trained run."""

from __future__ import annotations

import pytest
import torch

from cifarlab.config import recipe_from_dict
from cifarlab.data import Dataset
from cifarlab.runner.run import run_recipe
from tests.conftest import tiny_recipe_data

TINY = tiny_recipe_data(log={"sinks": ["jsonl"]})


@pytest.fixture(scope="session")
def test_slice(cifar10: Dataset) -> torch.Tensor:
    """32 real CIFAR-10 test images spread over the (class-sorted) test split."""
    return cifar10.test_images[torch.arange(32) * 311]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, cifar10):
    """A real run folder: LeNet trained one epoch on 200 CIFAR-10 images on the CPU."""
    out_dir = tmp_path_factory.mktemp("runs")
    result = run_recipe(recipe_from_dict({**TINY, "out_dir": str(out_dir)}, source="test"))
    assert result.status == "finished"
    return result.run_dir
