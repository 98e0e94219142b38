"""Evaluation and training plots as PNG files: confusion, misclassified gallery, curves, reliability.

Figures are built with matplotlib's object API (`Figure`, rendered by Agg), never pyplot, so
plotting touches no global state and needs no display. Every file is written atomically.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Sequence

import torch
from matplotlib.figure import Figure
from torch import Tensor

from cifarlab.atomic import atomic_path
from cifarlab.errors import CifarlabError
from cifarlab.evaluate.calibration import expected_calibration_error, reliability


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write `fig` as PNG to `path` atomically (format given, since the temp name has no .png)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi)
    return path


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


def plot_misclassified(
    images_uint8: Tensor,
    labels: Sequence[int] | Tensor,
    preds: Sequence[int] | Tensor,
    classes: Sequence[str],
    path: str | os.PathLike,
    n: int = 32,
) -> Path:
    """Gallery of the first `n` images whose prediction is wrong, titled true/pred."""
    labels = torch.as_tensor(labels).long().cpu()
    preds = torch.as_tensor(preds).long().cpu()
    if not (images_uint8.shape[0] == labels.shape[0] == preds.shape[0]):
        raise CifarlabError("images, labels and preds must have one entry per image")
    wrong = (labels != preds).nonzero().flatten()[: max(int(n), 0)]
    cols = min(8, max(len(wrong), 1))
    rows = max(math.ceil(len(wrong) / cols), 1)
    fig = Figure(figsize=(1.6 * cols, 1.9 * rows), layout="constrained")
    if len(wrong) == 0:
        fig.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        return save_figure(fig, path)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, index in zip(axes.flat, wrong.tolist()):
        image = images_uint8[index].cpu()
        if image.shape[0] == 1:
            ax.imshow(image[0].numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(image.permute(1, 2, 0).numpy(), interpolation="nearest")
        true_name, pred_name = classes[labels[index]], classes[preds[index]]
        ax.set_title(f"true: {true_name}\npred: {pred_name}", fontsize=7, color="firebrick")
    return save_figure(fig, path)


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The JSON objects of a run's metrics.jsonl; a truncated last line (crash mid-write) is dropped."""
    path = Path(path)
    if not path.is_file():
        raise CifarlabError(f"no metrics file at {path}; point to a run folder's metrics.jsonl")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                break
            raise CifarlabError(f"{path} line {number} is not JSON; fix or delete that line") from None
    return records


def _series(records: list[dict], kind: str, key: str) -> tuple[list[float], list[float]]:
    """(epoch, value) pairs of one field, skipping missing and non-finite values."""
    xs, ys = [], []
    for record in records:
        value = record.get(key)
        if record.get("kind") == kind and isinstance(value, (int, float)) and math.isfinite(value):
            xs.append(float(record.get("epoch", 0.0)))
            ys.append(float(value))
    return xs, ys


def plot_curves(metrics_jsonl_path: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Training curves from metrics.jsonl: loss (log scale), train/val accuracy, learning rate."""
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
    if any(v > 0 for v in step_loss + epoch_loss + val_loss):
        loss_ax.set_yscale("log")
    loss_ax.set(title="loss", xlabel="epoch")

    for key, label in (("train_top1", "train"), ("val_top1", "val")):
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
