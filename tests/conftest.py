"""Shared fixtures: real CIFAR-10, decoded at most once per machine and reused by every test.

The decoded cache lives where cifarlab always keeps it (`$CIFARLAB_CACHE`, else
`~/.cache/cifarlab/cache`), so a clean CI machine decodes CIFAR-10 once and later
sessions load it in a fraction of a second. Tests that build their own small archives
point CIFARLAB_CACHE at a temporary folder instead, so they never touch this cache.
"""

from __future__ import annotations

import os

import pytest

from cifarlab.config import recipe_from_dict
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


@pytest.fixture
def tiny_recipe(tmp_path, cifar10):
    """A recipe that trains a small BatchNorm network for a few steps on a few hundred real images."""

    def make(**sections):
        base = {
            "name": "tiny", "out_dir": str(tmp_path / "runs"), "seed": 3,
            "data": {"dataset": "cifar10", "val_size": 100, "train_limit": 200},
            "augment": {"crop_padding": 2, "cutout": 4},
            "model": {"name": "airbench94", "options": {"widths": [8, 16, 16]}},
            "optim": {"name": "sgd", "lr": 0.05, "nesterov": True},
            "schedule": {"name": "onecycle", "peak_epoch": 1},
            "train": {"epochs": 2, "batch_size": 32, "log_every": 2, "device": "cpu"},
            "eval": {"test": False, "batch_size": 200},
        }
        for key, value in sections.items():
            base.setdefault(key, {})
            base[key] = {**base[key], **value} if isinstance(value, dict) else value
        return recipe_from_dict(base, source="test")

    return make


def is_full_device(path: str = "/dev/full") -> bool:
    """Whether `path` is Linux's full device (every write fails with ENOSPC): some containers lack it, and
    writing to a missing /dev/full as root would only create a regular file there."""
    import stat

    return os.path.exists(path) and stat.S_ISCHR(os.stat(path).st_mode)


# CLAHE as normalisation (data.clahe_clip_limit): the tiny run trained on equalised images.
CLAHE_LIMIT, CLAHE_GRID = 2.0, 4


@pytest.fixture(scope="session")
def clahe_run(tmp_path_factory, cifar10):
    """The folder of TINY_RECIPE trained with data.clahe_clip_limit=2 (LeNet, 200 images, one epoch, val and test)."""
    from cifarlab.runner.run import run_recipe

    out_dir = tmp_path_factory.mktemp("clahe_runs")
    data = tiny_recipe_data(data={"clahe_clip_limit": CLAHE_LIMIT, "clahe_grid": CLAHE_GRID}, log={"sinks": ["jsonl"]},
                            out_dir=str(out_dir))
    result = run_recipe(recipe_from_dict(data, source="test"))
    assert result.status == "finished"
    return result.run_dir


def equalise_by_hand(images):
    """The tests' own reference: the CLAHE kernel at the run's fixed limit, rounded back to uint8."""
    import torch

    from cifarlab.data.augment.clahe import clahe

    limits = torch.full((len(images),), CLAHE_LIMIT)
    return (clahe(images.float() / 255, limits, CLAHE_GRID) * 255).round().to(torch.uint8)


def probabilities_by_hand(model, images, mean, std, tta="none"):
    """Softmax of `model` (eval mode, fp32) on uint8 `images` normalised with mean/std; tta="flip" averages the mirror in."""
    import torch

    x = (images.float() / 255 - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
    with torch.no_grad():
        probs = model.eval()(x).softmax(1)
        return (probs + model(x.flip(-1)).softmax(1)) / 2 if tta == "flip" else probs


def scores_by_hand(probs, labels) -> tuple[float, float]:
    """(top-1, mean negative log-likelihood) of probabilities against labels."""
    import torch

    top1 = (probs.argmax(1) == labels).double().mean().item()
    loss = -torch.log(probs.gather(1, labels.view(-1, 1)).clamp_min(1e-12)).mean().item()
    return top1, loss


def clahe_scores_by_hand(run, split: str, tta: str = "none") -> tuple[tuple[float, float], tuple[float, float]]:
    """(top-1, loss) of a run's model on its `split` equalised by hand, and on the stored images."""
    from cifarlab.data.prepare import split_images

    _, images, labels = split_images(run.recipe.data, run.recipe.seed, split, "the run")
    equalised = probabilities_by_hand(run.model, equalise_by_hand(images), run.mean, run.std, tta)
    stored = probabilities_by_hand(run.model, images, run.mean, run.std, tta)
    return scores_by_hand(equalised, labels), scores_by_hand(stored, labels)


def assert_equalised(scored: dict, expected: tuple[float, float], stored: tuple[float, float]) -> None:
    """`scored` holds the (top-1, loss) of the equalised images, and tells them from the stored ones'.

    A one-epoch LeNet is barely better than chance: its losses on equalised and stored images differ
    by 1e-5 to 1e-3, far more than the float rounding of scoring in batches (about 1e-7).
    """
    assert scored["top1"] == pytest.approx(expected[0], abs=1e-9) and scored["loss"] == pytest.approx(expected[1], abs=2e-6)
    assert scored["top1"] != pytest.approx(stored[0], abs=1e-9) or abs(scored["loss"] - stored[1]) > 1e-5


def write_image_folder(root, dataset: Dataset, train_per_class: int, test_per_class: int) -> str:
    """A folder dataset (root/images/split/class/N.png) of seeded picks of `dataset`; its `folder:` name."""
    from PIL import Image

    for split, images, labels, per_class in (("train", dataset.train_images, dataset.train_labels, train_per_class),
                                             ("test", dataset.test_images, dataset.test_labels, test_per_class)):
        for index in examples_per_class(labels, per_class, seed=0).tolist():
            folder = root / "images" / split / dataset.classes[labels[index]]
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(images[index].permute(1, 2, 0).numpy()).save(folder / f"{index}.png")
    return f"folder:{root / 'images'}"
