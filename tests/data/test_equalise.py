"""CLAHE as normalisation: one fixed equalisation of uint8 images, applied to every split a run uses."""

from __future__ import annotations

import pytest
import torch

from cifarlab.config.recipe import DataConfig
from cifarlab.data import equalise
from cifarlab.data.equalise import Clahe, clahe_from, clahe_of
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.data.prepare import prepare_splits, split_images
from cifarlab.data.stats import channel_stats
from cifarlab.errors import CifarlabError
from tests.conftest import CLAHE_GRID, CLAHE_LIMIT, equalise_by_hand

SLICE = DataConfig(dataset="cifar10", val_size=100, train_limit=200)


def test_clahe_is_the_augmentation_kernel_at_one_limit_rounded_to_uint8(cifar10, monkeypatch):
    images = cifar10.test_images[:50]
    equalised = Clahe(CLAHE_LIMIT, CLAHE_GRID)(images)
    assert equalised.dtype == torch.uint8 and equalised.shape == images.shape
    assert torch.equal(equalised, equalise_by_hand(images)) and not torch.equal(equalised, images)
    monkeypatch.setattr(equalise, "CHUNK", 7)  # images are equalised alone: the passes do not matter
    assert torch.equal(Clahe(CLAHE_LIMIT, CLAHE_GRID)(images), equalised)


def test_images_clahe_cannot_take_are_refused_naming_the_key():
    with pytest.raises(CifarlabError, match="data.clahe_clip_limit=null"):
        Clahe(2.0)(torch.zeros(2, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(CifarlabError, match="data.clahe_grid=64 .*use at most 32"):
        Clahe(2.0, 64)(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_the_recipe_turns_clahe_on_with_a_contrast_limit():
    assert clahe_of(DataConfig()) is None
    assert clahe_of(DataConfig(clahe_clip_limit=3, clahe_grid=8)) == Clahe(3.0, 8)
    assert clahe_from(None, 4) is None and clahe_from(2.0, None) == Clahe(2.0, 4)


def test_the_batch_pipeline_equalises_its_split_once_for_every_batch(cifar10):
    images, labels = cifar10.test_images[:64], cifar10.test_labels[:64]
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    batches = BatchPipeline(images, labels, batch_size=32, num_classes=10, mean=mean, std=std, shuffle=False,
                            drop_last=False, clahe=Clahe(CLAHE_LIMIT, CLAHE_GRID))
    inputs = torch.cat([batch.inputs for batch in batches.epoch(0)])
    expected = (equalise_by_hand(images).float() / 255 - 0.5) / 0.25
    torch.testing.assert_close(inputs, expected)
    assert torch.equal(cifar10.test_images[:64], images)  # the caller's images stay as they were


def test_the_mean_and_std_are_those_of_the_equalised_training_images(cifar10):
    plain = prepare_splits(SLICE, seed=0)
    equalised = prepare_splits(DataConfig(**{**vars(SLICE), "clahe_clip_limit": CLAHE_LIMIT}), seed=0)
    assert torch.equal(equalised.train_images, plain.train_images)  # the splits keep the stored images
    mean, std = channel_stats(equalise_by_hand(plain.train_images))
    assert equalised.mean == pytest.approx(mean.tolist()) and equalised.std == pytest.approx(std.tolist())
    assert equalised.std != pytest.approx(plain.std)


def test_split_images_are_the_held_out_and_test_images_of_prepare_splits(cifar10):
    splits = prepare_splits(SLICE, seed=5)
    classes, images, labels = split_images(SLICE, 5, "val", "run x")
    assert classes == splits.classes and torch.equal(images, splits.val_images) and torch.equal(labels, splits.val_labels)
    _, images, labels = split_images(SLICE, 5, "test", "run x")
    assert torch.equal(images, splits.test_images) and torch.equal(labels, splits.test_labels)
    with pytest.raises(CifarlabError, match="run x has no validation split .*use the test split"):
        split_images(DataConfig(dataset="cifar10", full_train=True), 5, "val", "run x")
    with pytest.raises(CifarlabError, match="unknown split 'train'; use test or val"):
        split_images(SLICE, 5, "train", "run x")
