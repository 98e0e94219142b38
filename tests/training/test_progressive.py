"""Progressive resizing: smaller batches for the first epochs, full size after, refused where it cannot work."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cifarlab.config import recipe_from_dict
from cifarlab.config.recipe import AugmentConfig
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.runner.run import run_recipe
from cifarlab.training import memory_fit
from cifarlab.training.callbacks import Callback


def _pipeline(images: torch.Tensor, labels: torch.Tensor, augment: AugmentConfig) -> BatchPipeline:
    return BatchPipeline(images, labels, batch_size=len(images), num_classes=10, mean=(0.5, 0.4, 0.3),
                         std=(0.2, 0.25, 0.5), augment=augment, shuffle=False)


def test_early_epochs_are_the_full_size_batches_downscaled_with_antialiasing(cifar10_small):
    images, labels = cifar10_small.train_images[:16], cifar10_small.train_labels[:16]
    plain = AugmentConfig(crop_padding=2, flip="alternating")
    progressive = AugmentConfig(crop_padding=2, flip="alternating", progressive_size=24, progressive_epochs=2)
    for epoch in range(3):
        full = next(_pipeline(images, labels, plain).epoch(epoch)).inputs
        batch = next(_pipeline(images, labels, progressive).epoch(epoch)).inputs
        if epoch < 2:
            assert batch.shape == (16, 3, 24, 24)
            # Same crops and flips as the full-size batch, then an antialiased bilinear resize.
            expected = F.interpolate(full, size=(24, 24), mode="bilinear", antialias=True, align_corners=False)
            torch.testing.assert_close(batch, expected)
        else:
            torch.testing.assert_close(batch, full)


def test_downscaling_normalised_images_equals_normalising_downscaled_ones(cifar10_small):
    pixels = cifar10_small.train_images[:8].float() / 255
    mean = torch.tensor([0.5, 0.4, 0.3]).view(1, 3, 1, 1)
    std = torch.tensor([0.2, 0.25, 0.5]).view(1, 3, 1, 1)
    resize = lambda x: F.interpolate(x, size=(20, 20), mode="bilinear", antialias=True, align_corners=False)  # noqa: E731
    torch.testing.assert_close(resize((pixels - mean) / std), (resize(pixels) - mean) / std, atol=1e-5, rtol=1e-5)


def test_airbench_global_pool_equals_its_published_3x3_pool_and_takes_smaller_images():
    model = create("airbench94").eval()
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        features = model.groups(model.activ(model.whiten(x)))
        assert features.shape[-2:] == (3, 3)
        torch.testing.assert_close(model.pool(features), F.max_pool2d(features, 3))
        assert model(torch.randn(2, 3, 24, 24)).shape == (2, 10)


def _recipe(**augment):
    return recipe_from_dict({"augment": augment, "train": {"batch_size": 64, "device": "cpu"}})


def test_a_side_not_below_the_training_images_is_refused_with_a_smaller_one():
    with pytest.raises(CifarlabError, match=r"augment\.progressive_size=32 is not smaller than the 32x32 training "
                                            r"images; use a smaller side, e.g\. augment\.progressive_size=24"):
        memory_fit.check_fits(_recipe(progressive_size=32, progressive_epochs=1), 1000, create("airbench94"), 32)


def test_a_network_that_cannot_take_the_smaller_images_is_refused_before_training():
    fixed_head = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(4 * 32 * 32, 10))
    with pytest.raises(CifarlabError, match=r"model resnet18 cannot take the 24x24 images of progressive resizing "
                                            r".*raise augment\.progressive_size or turn it off"):
        memory_fit.check_fits(_recipe(progressive_size=24, progressive_epochs=1), 1000, fixed_head, 32)
    memory_fit.check_fits(_recipe(progressive_size=24, progressive_epochs=1), 1000, create("airbench94"), 32)


class InputSides(Callback):
    """Records the side of the batches the model is trained on, per epoch."""

    def __init__(self):
        self.sides: dict[int, set[int]] = {}
        self.hook = None

    def on_start(self, trainer, total_steps: int, start_step: int) -> None:
        def record(module, inputs):
            epoch = trainer.progress.step // trainer.steps_per_epoch
            self.sides.setdefault(epoch, set()).add(inputs[0].shape[-1])
        self.hook = trainer.model.register_forward_pre_hook(record)

    def on_end(self, trainer, *args, **kwargs) -> None:
        self.hook.remove()


@pytest.mark.slow
def test_a_real_run_trains_small_then_full_size_and_evaluates_at_full_size(tiny_recipe):
    recipe = tiny_recipe(augment={"progressive_size": 24, "progressive_epochs": 1}, train={"epochs": 2},
                         eval={"test": True, "batch_size": 200})
    sides = InputSides()
    result = run_recipe(recipe, callbacks=[sides])
    assert result.status == "finished"
    assert sides.sides[0] == {24}
    assert 32 in sides.sides[1]  # training at full size, and evaluation at full size after it
    assert 24 not in sides.sides.get(1, set()) | sides.sides.get(2, set())
