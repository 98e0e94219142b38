"""From a recipe's data section to the three splits a run uses: train, validation and test."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from cifarlab.config.recipe import DataConfig
from cifarlab.data.equalise import clahe_of
from cifarlab.data.sources import Dataset, load_dataset
from cifarlab.data.splits import examples_per_class, validation_split
from cifarlab.data.stats import channel_stats
from cifarlab.errors import CifarlabError


@dataclass
class Splits:
    classes: list[str]
    train_images: torch.Tensor
    train_labels: torch.Tensor
    val_images: torch.Tensor
    val_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    train_indices: torch.Tensor  # into the dataset's training set, saved with the run
    val_indices: torch.Tensor
    mean: tuple[float, ...]  # of the training images actually used (equalised with data.clahe_*), in [0, 1] units
    std: tuple[float, ...]

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def indices_record(self) -> dict:
        return {"train": self.train_indices.tolist(), "val": self.val_indices.tolist()}


def prepare_splits(cfg: DataConfig, seed: int, stats: Optional[tuple] = None,
                   dataset: Optional[Dataset] = None) -> Splits:
    """Hold out a stratified validation split, then take the k-shot subset from what is left.

    `dataset` replaces loading `cfg.dataset` (images handed over from Python). The test set is
    returned untouched for final numbers only; nothing here looks at it.
    """
    ds = dataset if dataset is not None else _load(cfg)
    labels = ds.train_labels
    train_idx, val_idx = _held_out(cfg, labels, seed)
    if cfg.examples_per_class is not None:
        subset_seed = seed if cfg.subset_seed is None else cfg.subset_seed
        train_idx = train_idx[examples_per_class(labels[train_idx], cfg.examples_per_class, seed=subset_seed)]
    if cfg.train_limit is not None and cfg.train_limit < len(train_idx):
        per_class = max(1, cfg.train_limit // len(ds.classes))
        train_idx = train_idx[examples_per_class(labels[train_idx], per_class, seed=seed)]
    train_images = ds.train_images[train_idx]
    if stats is None:
        # With CLAHE as normalisation the mean/std step sees equalised images: take their statistics.
        equalise = clahe_of(cfg)
        stats = channel_stats(equalise(train_images) if equalise is not None else train_images)
    mean, std = stats
    return Splits(
        classes=list(ds.classes),
        train_images=train_images, train_labels=labels[train_idx],
        val_images=ds.train_images[val_idx], val_labels=labels[val_idx],
        test_images=ds.test_images, test_labels=ds.test_labels,
        train_indices=train_idx, val_indices=val_idx,
        mean=tuple(float(m) for m in mean), std=tuple(float(s) for s in std),
    )


def _load(cfg: DataConfig) -> Dataset:
    return load_dataset(cfg.dataset, root=cfg.root, max_image_pixels=cfg.max_image_pixels)


def _held_out(cfg: DataConfig, labels: torch.Tensor, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, validation) indices into the dataset's training set: the stratified hold-out of `cfg.val_size`."""
    if cfg.full_train or cfg.val_size == 0:
        return torch.arange(len(labels)), torch.zeros(0, dtype=torch.long)
    if cfg.val_size >= len(labels):
        raise CifarlabError(
            f"data.val_size={cfg.val_size} leaves no training images ({len(labels)} in {cfg.dataset}); "
            "lower data.val_size"
        )
    return validation_split(labels, cfg.val_size, seed=seed)


def split_images(cfg: DataConfig, seed: int, split: str, owner: str) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """(classes, uint8 images, labels) of a run's `split`: "test" is the dataset's test split, "val" the
    images the run held out of training (its data settings and seed choose them, as `prepare_splits` does).

    `owner` names the run in the message when it holds out no validation images ("run runs/quick").
    The images are the stored ones: every evaluation path applies the run's preprocessing itself.
    """
    if split not in ("val", "test"):
        raise CifarlabError(f"unknown split {split!r}; use test or val")
    ds = _load(cfg)
    if split == "test":
        return list(ds.classes), ds.test_images, ds.test_labels
    _, val_idx = _held_out(cfg, ds.train_labels, seed)
    if not len(val_idx):
        raise CifarlabError(f"{owner} has no validation split (data.val_size=0 or data.full_train); use the test split")
    return list(ds.classes), ds.train_images[val_idx], ds.train_labels[val_idx]
