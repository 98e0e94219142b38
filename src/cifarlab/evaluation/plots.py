"""Evaluation and training plots as PNG files: confusion, top-loss gallery, curves, reliability.

Figures are built with matplotlib's object API (`Figure`, rendered by Agg), never pyplot, so
plotting touches no global state and needs no display. Every file is written atomically.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import Tensor

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.calibration import expected_calibration_error, reliability
from cifarlab.evaluation.metrics import image_losses, top_losses
from cifarlab.figures import save_figure
from cifarlab.runs import read_metrics


def plot_confusion(confusion: Tensor, classes: Sequence[str], path: str | os.PathLike) -> Path:
    """Row-normalised confusion matrix (rows = true class); sized to stay legible at 100 classes."""
    confusion = torch.as_tensor(confusion).double().cpu()
    c = confusion.shape[0]
    if confusion.shape != (c, c) or len(classes) != c:
        raise CifarlabError(f"confusion {tuple(confusion.shape)} does not match {len(classes)} class names")
    rates = confusion / confusion.sum(dim=1, keepdim=True).clamp(min=1)
    side = min(max(6.0, 0.14 * c + 2.5), 20.0)
    font = min(9.0, max(3.0, (side - 2.5) / c * 72 * 0.7))
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(rates.numpy(), cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_xticks(range(c), labels=list(classes), rotation=90, fontsize=font)
    ax.set_yticks(range(c), labels=list(classes), fontsize=font)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion (fraction of each true class)")
    if c <= 15:  # numbers in the cells only where they fit
        for i in range(c):
            for j in range(c):
                value = rates[i, j].item()
                colour = "white" if value > 0.5 else "black"
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color=colour)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return save_figure(fig, path, dpi=150 if c > 30 else 120)


def plot_top_losses(
    images_uint8: Tensor,
    labels: Sequence[int] | Tensor,
    probs: Tensor,
    classes: Sequence[str],
    path: str | os.PathLike,
    n: int = 32,
) -> Path:
    """Gallery of the `n` highest-loss misclassified images, titled true / predicted, confidence and loss.

    The confidence is the probability of the predicted class; the loss is -log p[true]. Picking
    by loss rather than taking the first errors shows the worst mistakes of every class, even
    when the images are sorted by class.
    """
    labels = torch.as_tensor(labels).long().cpu()
    if not (images_uint8.shape[0] == labels.shape[0] == probs.shape[0]):
        raise CifarlabError("images, labels and probs must have one entry per image")
    probs = probs.cpu()
    worst = top_losses(probs, labels, n)
    losses = image_losses(probs, labels)
    cols = min(8, max(len(worst), 1))
    rows = max(math.ceil(len(worst) / cols), 1)
    fig = Figure(figsize=(1.7 * cols, 2.2 * rows + 0.3), layout="constrained")
    if len(worst) == 0:
        fig.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        return save_figure(fig, path)
    fig.suptitle("highest-loss errors: true / predicted, p(predicted), loss", fontsize=9)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, worst.tolist()):
        image = images_uint8[index].cpu()
        if image.shape[0] == 1:
            ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        confidence, predicted = probs[index].max(dim=0)
        title = (f"{classes[labels[index]]} / {classes[predicted]}\n"
                 f"p={confidence.item():.2f}  loss {losses[index].item():.2f}")
        ax.set_title(title, fontsize=7, color="firebrick")
    return save_figure(fig, path)


def _series(records: list[dict], kind: str, key: str) -> tuple[list[float], list[float]]:
    """(epoch, value) pairs of one field, skipping missing and non-finite values."""
    xs, ys = [], []
    for record in records:
        value = record.get(key)
        if record.get("kind") == kind and isinstance(value, (int, float)) and math.isfinite(value):
            xs.append(float(record.get("epoch", 0.0)))
            ys.append(float(value))
    return xs, ys


TEST_CURVE_LABEL = "test (display only)"


def plot_curves(metrics_jsonl_path: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Training curves from metrics.jsonl: loss (log scale), train/val accuracy (and the display-only test
    curve of eval.test_curve), learning rate."""
    records = read_metrics(metrics_jsonl_path)
    if not records:
        raise CifarlabError(f"{metrics_jsonl_path} holds no metrics yet; train for at least one logged step")
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    loss_ax, acc_ax, lr_ax = fig.subplots(1, 3)

    step_x, step_loss = _series(records, "step", "loss")
    epoch_x, epoch_loss = _series(records, "epoch", "loss")
    if step_x:
        loss_ax.plot(step_x, step_loss, lw=0.8, alpha=0.7, label="train (per step)")
    elif epoch_x:
        loss_ax.plot(epoch_x, epoch_loss, "o-", label="train (per epoch)")
    val_x, val_loss = _series(records, "epoch", "val_loss")
    if val_x:
        loss_ax.plot(val_x, val_loss, "o-", label="val")
    test_x, test_loss = _series(records, "epoch", "test_loss")
    if test_x:  # eval.test_curve
        loss_ax.plot(test_x, test_loss, "s--", label=TEST_CURVE_LABEL)
    if any(v > 0 for v in step_loss + epoch_loss + val_loss + test_loss):
        loss_ax.set_yscale("log")
    loss_ax.set(title="loss", xlabel="epoch")

    for key, label in (("train_top1", "train"), ("val_top1", "val"), ("test_top1", TEST_CURVE_LABEL)):
        xs, ys = _series(records, "epoch", key)
        if not xs and key == "train_top1":
            xs, ys = _series(records, "step", key)
        if xs:
            acc_ax.plot(xs, [100 * y for y in ys], "o-" if len(xs) < 60 else "-", label=label)
    acc_ax.set(title="top-1 accuracy (%)", xlabel="epoch")

    lr_x, lr = _series(records, "step", "lr")
    if not lr_x:
        lr_x, lr = _series(records, "epoch", "lr")
    lr_ax.plot(lr_x, lr)
    lr_ax.set(title="learning rate", xlabel="epoch")

    for ax in (loss_ax, acc_ax):
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    for ax in (loss_ax, acc_ax, lr_ax):
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_reliability(probs: Tensor, labels: Tensor, path: str | os.PathLike, bins: int = 15) -> Path:
    """Reliability diagram (accuracy against confidence per bin) with the ECE and bin counts."""
    table = reliability(probs, labels, bins)
    ece = expected_calibration_error(probs, labels, bins)
    edges = table["edges"].numpy()
    width = edges[1] - edges[0]
    centres = edges[:-1] + width / 2
    accuracy = torch.nan_to_num(table["accuracy"], nan=0.0).numpy()
    gap = (centres - accuracy) * (table["count"] > 0).numpy()  # no gap drawn over an empty bin
    fig = Figure(figsize=(5, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    top.bar(centres, accuracy, width=width, edgecolor="black", label="accuracy")
    top.bar(centres, gap, bottom=accuracy, width=width, color="red", alpha=0.25, label="gap")
    top.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="accuracy", title=f"reliability (ECE {100 * ece:.2f}%)")
    top.legend(loc="upper left")
    bottom.bar(centres, table["count"].numpy(), width=width, edgecolor="black")
    bottom.set(xlabel="confidence (top-1 probability)", ylabel="images")
    return save_figure(fig, path)
