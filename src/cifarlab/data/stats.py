"""Per-channel mean and std of uint8 images, and the summary behind `cifarlab data info`."""

from __future__ import annotations

import os

import torch

from cifarlab.data.sources import load_dataset
from cifarlab.errors import CifarlabError

_CHUNK = 16384  # images per step: a 16 MB copy per channel for CIFAR, few enough calls to be quick


def channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (population) std per channel of (N, C, H, W) uint8 images, in [0, 1] units, float64.

    Each channel is reduced to a 256-bin histogram of exact integer counts, chunk by chunk;
    the moments are then taken from the histogram in float64, so the result matches a
    float64 computation over all pixels to rounding.
    """
    if images.dtype != torch.uint8 or images.ndim != 4 or len(images) == 0:
        raise CifarlabError(f"channel statistics need non-empty (N, C, H, W) uint8 images, got "
                            f"{images.dtype} {tuple(images.shape)}; pass the dataset's raw images")
    channels = images.shape[1]
    counts = torch.zeros(channels, 256, dtype=torch.int64)
    for start in range(0, len(images), _CHUNK):
        chunk = images[start:start + _CHUNK]
        for c in range(channels):
            counts[c] += torch.bincount(chunk[:, c].reshape(-1), minlength=256).cpu()
    values = torch.arange(256, dtype=torch.float64) / 255.0
    n = counts.sum(dim=1).double()
    mean = (counts * values).sum(dim=1) / n
    var = (counts * (values - mean[:, None]) ** 2).sum(dim=1) / n
    return mean, var.sqrt()


def dataset_info(name: str, root: str | os.PathLike | None = None) -> dict:
    """Sizes, classes, per-split counts and train per-channel mean/std of a dataset."""
    ds = load_dataset(name, root)
    mean, std = channel_stats(ds.train_images)
    return {
        "name": ds.name,
        "num_classes": ds.num_classes,
        "classes": list(ds.classes),
        "image_shape": list(ds.train_images.shape[1:]),
        "train": len(ds.train_labels),
        "test": len(ds.test_labels),
        "train_per_class": torch.bincount(ds.train_labels, minlength=ds.num_classes).tolist(),
        "test_per_class": torch.bincount(ds.test_labels, minlength=ds.num_classes).tolist(),
        "mean": mean.tolist(),
        "std": std.tolist(),
    }
