import pytest

from cifarlab.config import recipe_from_dict


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
