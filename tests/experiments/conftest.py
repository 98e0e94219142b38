"""One tiny sweep (2 models x 2 seeds on 300 real CIFAR-10 images), run once and read by several tests.

The images form an image-folder dataset (20 train and 10 test per class), so each run's test
evaluation is 100 images, not 10,000. Its decoded cache lives in a temporary folder: tests that
train on it set CIFARLAB_CACHE there with the `tiny_cache` fixture.
"""

import pytest
import yaml
from PIL import Image

from cifarlab.cli import main
from cifarlab.data import examples_per_class

TINY = {
    "name": "tiny", "seed": 0,
    "data": {"val_size": 50},
    "model": {"name": "lenet"},
    "optim": {"name": "sgd", "lr": 0.05},
    "train": {"epochs": 1, "batch_size": 32, "log_every": 2, "device": "cpu"},
    "eval": {"test": True},
}
GRID = ["model.name=lenet,convnet5", "seed=0,1"]
RUN_NAMES = ["lenet_seed0", "lenet_seed1", "convnet5_seed0", "convnet5_seed1"]


@pytest.fixture(scope="session")
def tiny_folder(tmp_path_factory, cifar10):
    """(dataset name, cache folder) of a 20-train / 10-test images per class folder of real CIFAR-10."""
    root = tmp_path_factory.mktemp("tiny_cifar")
    for split, images, labels, per_class in (("train", cifar10.train_images, cifar10.train_labels, 20),
                                             ("test", cifar10.test_images, cifar10.test_labels, 10)):
        for index in examples_per_class(labels, per_class, seed=0).tolist():
            folder = root / "images" / split / cifar10.classes[labels[index]]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[index].permute(1, 2, 0).numpy()).save(folder / f"{index}.png")
    return f"folder:{root / 'images'}", root / "cache"


@pytest.fixture
def tiny_cache(tiny_folder, monkeypatch):
    monkeypatch.setenv("CIFARLAB_CACHE", str(tiny_folder[1]))


@pytest.fixture(scope="session")
def recipe_file(tmp_path_factory, tiny_folder):
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(yaml.safe_dump({**TINY, "data": {**TINY["data"], "dataset": tiny_folder[0]}}))
    return path


@pytest.fixture(scope="session")
def zoo_sweep(tmp_path_factory, recipe_file, tiny_folder):
    """The sweep folder of `cifarlab sweep tiny.yaml --grid model.name=lenet,convnet5 seed=0,1`; tests only read it."""
    out = tmp_path_factory.mktemp("sweep") / "zoo"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CIFARLAB_CACHE", str(tiny_folder[1]))
        assert main(["sweep", str(recipe_file), "--grid", *GRID, "--out", str(out)]) == 0
    return out
