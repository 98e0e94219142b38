"""Shared fixtures: real CIFAR-10, decoded at most once per machine and reused by every test.

The decoded cache lives where cifarlab always keeps it (`$CIFARLAB_CACHE`, else
`~/.cache/cifarlab/cache`), so a clean CI machine decodes CIFAR-10 once and later
sessions load it in a fraction of a second. Tests that build their own small archives
point CIFARLAB_CACHE at a temporary folder instead, so they never touch this cache.
"""

from __future__ import annotations

import os

import pytest

from cifarlab.data import Dataset, examples_per_class, load_dataset
from cifarlab.errors import CifarlabError


def load_real(name: str) -> Dataset:
    """Real `name` from $CIFARLAB_DATA or an existing cache; skip when neither is there."""
    try:
        return load_dataset(name, download=False)
    except CifarlabError as exc:
        if os.environ.get("CIFARLAB_DATA"):
            raise  # the data was promised: failing to load it is a real failure
        pytest.skip(f"{name} is not available; set CIFARLAB_DATA to run this test ({exc})")


@pytest.fixture(scope="session")
def cifar10() -> Dataset:
    """The full CIFAR-10 Dataset: 50,000 train and 10,000 test uint8 images."""
    return load_real("cifar10")


@pytest.fixture(scope="session")
def cifar10_small(cifar10: Dataset) -> Dataset:
    """A CIFAR-10 Dataset of 100 train and 20 test images per class (seeded picks, sorted)."""
    train = examples_per_class(cifar10.train_labels, 100, seed=0)
    test = examples_per_class(cifar10.test_labels, 20, seed=0)
    return Dataset(
        name="cifar10_small", classes=list(cifar10.classes),
        train_images=cifar10.train_images[train], train_labels=cifar10.train_labels[train],
        test_images=cifar10.test_images[test], test_labels=cifar10.test_labels[test],
    )


# The smallest real training: LeNet on 200 CIFAR-10 images (100 held out), one epoch, on the CPU.
TINY_RECIPE = {
    "name": "tiny", "seed": 1,
    "data": {"dataset": "cifar10", "val_size": 100, "train_limit": 200},
    "model": {"name": "lenet"},
    "optim": {"name": "sgd", "lr": 0.05},
    "train": {"epochs": 1, "batch_size": 32, "log_every": 2, "device": "cpu"},
    "eval": {"test": True, "batch_size": 500},
}


def tiny_recipe_data(**sections) -> dict:
    """TINY_RECIPE with some sections changed: a mapping merges into its section, anything else replaces it."""
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in TINY_RECIPE.items()}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) and isinstance(data.get(key), dict) else value
    return data


def is_full_device(path: str = "/dev/full") -> bool:
    """Whether `path` is Linux's full device (every write fails with ENOSPC): some containers lack it, and
    writing to a missing /dev/full as root would only create a regular file there."""
    import stat

    return os.path.exists(path) and stat.S_ISCHR(os.stat(path).st_mode)
