"""The Grad-CAM gallery: each image beside its map overlay, correct examples left, misclassified right."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure
from torch import Tensor

from cifarlab.figures import save_figure

# How strongly the heat map covers the image: enough to read both.
OVERLAY_WEIGHT = 0.5


@dataclass
class Example:
    """One image to show: its uint8 pixels (C, H, W), map (H, W) in [0, 1], labels and confidence."""

    image: Tensor
    heatmap: Tensor
    true_class: str
    predicted_class: str
    confidence: float


def overlay(image: Tensor, heatmap: Tensor) -> np.ndarray:
    """(H, W, 3) float RGB in [0, 1]: the image blended with the heat map in the jet colours."""
    pixels = image.permute(1, 2, 0).float().numpy() / 255.0
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    colours = colormaps["jet"](heatmap.numpy())[..., :3]
    return (1 - OVERLAY_WEIGHT) * pixels + OVERLAY_WEIGHT * colours


def _show(ax, pixels: np.ndarray) -> None:
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        ax.imshow(pixels[..., 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    else:
        ax.imshow(pixels, interpolation="nearest")


def plot_gallery(correct: Sequence[Example], misclassified: Sequence[Example], path: str | os.PathLike,
                 title: str) -> Path:
    """Write the gallery PNG: two column groups (correct | misclassified) of image + overlay pairs."""
    rows = max(len(correct), len(misclassified), 1)
    fig = Figure(figsize=(7.2, 1.75 * rows + 0.6), layout="constrained")
    fig.suptitle(title, fontsize=9)
    axes = fig.subplots(rows, 4, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for group, (examples, colour, heading) in enumerate(
        ((correct, "darkgreen", "correct"), (misclassified, "firebrick", "misclassified"))
    ):
        axes[0, 2 * group].set_title(f"{heading}\n", fontsize=9, color=colour, loc="left")
        if not examples:
            axes[0, 2 * group].text(0.0, 0.5, f"no {heading} images", fontsize=8, transform=axes[0, 2 * group].transAxes)
        for row, example in enumerate(examples):
            image_ax, overlay_ax = axes[row, 2 * group], axes[row, 2 * group + 1]
            _show(image_ax, example.image.permute(1, 2, 0).numpy())
            overlay_ax.imshow(overlay(example.image, example.heatmap), interpolation="bilinear")
            image_ax.text(0.5, -0.04, f"true {example.true_class}", transform=image_ax.transAxes, fontsize=7,
                          ha="center", va="top")
            overlay_ax.text(0.5, -0.04, f"pred {example.predicted_class} {example.confidence:.0%}",
                            transform=overlay_ax.transAxes, fontsize=7, ha="center", va="top", color=colour)
    return save_figure(fig, path)
