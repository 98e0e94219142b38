"""One tiny sweep (2 models x 2 seeds on 300 real CIFAR-10 images), run once and read by several tests.

The images form an image-folder dataset (20 train and 10 test per class), so each run's test
evaluation is 100 images, not 10,000. Its decoded cache lives in a temporary folder: tests that
train on it set CIFARLAB_CACHE there with the `tiny_cache` fixture.
"""

import pytest
import yaml
from PIL import Image

from cifarlab.cli import main
from cifarlab.config import recipe_from_dict
from tests.conftest import write_image_folder

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
    return write_image_folder(root, cifar10, 20, 10), root / "cache"


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


# Few-shot sweeps: a BiT ResNet-V2 with one unit per stage at half width, trained 5 HyperRule steps.
TINY_BIT = {"depths": [1, 1, 1, 1], "width": 0.5, "root": "cifar"}


def _write_folder(root, images, labels, classes, per_class):
    for split in ("train", "test"):
        for c, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            members = (labels == c).nonzero().flatten()[:per_class]
            for i in members.tolist():
                Image.fromarray(images[i].permute(1, 2, 0).numpy()).save(folder / f"{i}.png")


@pytest.fixture
def small_cifar_folder(tmp_path, cifar10_small, monkeypatch):
    """Real CIFAR-10 images as a small image-folder dataset: 4 train and 4 test images per class."""
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "small_cifar"
    _write_folder(root, cifar10_small.train_images, cifar10_small.train_labels, cifar10_small.classes, 4)
    return f"folder:{root}"


def sweep_recipe(dataset, weights, train=None, **fewshot_extra):
    """The tiniest few-shot sweep recipe: TINY_BIT at 32x32, 5 steps, batch 16 (`train` changes train.* keys)."""
    return recipe_from_dict({
        "name": "tiny_sweep",
        "data": {"dataset": dataset},
        "model": {"name": "bit_resnetv2", "options": TINY_BIT},
        "train": {"batch_size": 16, "device": "cpu", "log_every": 2, **(train or {})},
        "eval": {"batch_size": 1000},
        "fewshot": {"weights": weights, "shots": [1, 2], "seeds": 2, "precrop": 36, "crop": 32,
                    "boundaries": [1, 2, 3, 4, 5], **fewshot_extra},
    }, source="test")
