"""Classification metrics from a probability matrix: top-1, top-5, NLL, per-class accuracy, confusion."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from cifarlab.errors import CifarlabError

# Probabilities are clamped to this floor before the log so one confident mistake gives a
# large but finite loss (-log(1e-12) ~ 27.6) instead of infinity.
PROB_FLOOR = 1e-12


def check_predictions(probs: Tensor, labels: Tensor, num_classes: int | None = None) -> tuple[Tensor, Tensor]:
    """Validate (N, C) probabilities and (N,) integer labels; return both on the CPU."""
    if not isinstance(probs, Tensor) or probs.ndim != 2 or not probs.is_floating_point():
        raise CifarlabError("probs must be a float tensor of shape (N, num_classes); pass predict()'s output")
    labels = torch.as_tensor(labels)
    if labels.ndim != 1 or labels.shape[0] != probs.shape[0] or labels.is_floating_point():
        raise CifarlabError(
            f"labels must be integers of shape ({probs.shape[0]},) to match probs, got {labels.dtype} "
            f"{tuple(labels.shape)}; pass one class index per image"
        )
    if probs.shape[0] == 0:
        raise CifarlabError("no predictions to score (N=0); evaluate at least one image")
    c = probs.shape[1]
    if num_classes is not None and c != num_classes:
        raise CifarlabError(f"probs have {c} columns but num_classes={num_classes}; the model's head must match")
    labels = labels.long().cpu()
    if labels.min() < 0 or labels.max() >= c:
        raise CifarlabError(f"labels must lie in [0, {c - 1}], got {labels.min().item()}..{labels.max().item()}")
    return probs.cpu(), labels


def confusion_matrix(preds: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """C x C int64 counts; row = true class, column = predicted class."""
    flat = labels.long() * num_classes + preds.long()
    return torch.bincount(flat, minlength=num_classes * num_classes).view(num_classes, num_classes)


def per_class_accuracy(confusion: Tensor) -> list[float | None]:
    """Accuracy of each true class over all of its images; None for a class with no images."""
    counts = confusion.sum(dim=1)
    correct = confusion.diagonal()
    return [(int(k) / int(n)) if n > 0 else None for k, n in zip(correct, counts)]


def image_losses(probs: Tensor, labels: Tensor) -> Tensor:
    """Each image's negative log-likelihood -log p[true] (float64, p clamped at PROB_FLOOR)."""
    p_true = probs.double().gather(1, labels.long()[:, None]).squeeze(1)
    return -p_true.clamp(PROB_FLOOR, 1.0).log()


def top_losses(probs: Tensor, labels: Tensor, n: int) -> Tensor:
    """Indices of the `n` misclassified images with the highest loss, highest first, over all classes."""
    probs, labels = check_predictions(probs, labels)
    wrong = (probs.argmax(dim=1) != labels).nonzero().flatten()
    order = image_losses(probs[wrong], labels[wrong]).sort(descending=True, stable=True).indices
    return wrong[order][: max(int(n), 0)]


def most_confused(confusion: Tensor, classes: Sequence[str], k: int = 10) -> list[dict]:
    """The `k` largest off-diagonal confusion counts as {true, predicted, count}, largest first.

    Ties keep row-major order (true class, then predicted class), so the list is reproducible;
    pairs never confused are left out.
    """
    confusion = torch.as_tensor(confusion).long().cpu()
    c = confusion.shape[0]
    errors = confusion.clone()
    errors.fill_diagonal_(0)
    largest = errors.flatten().sort(descending=True, stable=True)
    shown = max(int(k), 0)
    pairs = []
    for count, cell in zip(largest.values[:shown].tolist(), largest.indices[:shown].tolist()):
        if count == 0:
            break
        pairs.append({"true": classes[cell // c], "predicted": classes[cell % c], "count": count})
    return pairs


def classification_metrics(probs: Tensor, labels: Tensor, num_classes: int) -> dict:
    """Top-1, top-k (k = min(5, C)), mean NLL, per-class accuracy and confusion of (N, C) probabilities.

    Returns a dict: `top1`, `top5` (fractions in [0, 1]; `top5` is top-min(5, C)), `loss` (mean of
    -log p[true], p clamped at PROB_FLOOR), `per_class_accuracy` (list over classes, each over
    every image of that class; None where a class has no images), `class_counts` (images per
    class) and `confusion` (C x C int64 tensor, rows = true class, columns = predicted class).
    """
    probs, labels = check_predictions(probs, labels, num_classes)
    preds = probs.argmax(dim=1)
    k = min(5, num_classes)
    topk = probs.topk(k, dim=1).indices
    confusion = confusion_matrix(preds, labels, num_classes)
    return {
        "top1": (preds == labels).double().mean().item(),
        "top5": (topk == labels[:, None]).any(dim=1).double().mean().item(),
        "loss": image_losses(probs, labels).mean().item(),
        "per_class_accuracy": per_class_accuracy(confusion),
        "class_counts": confusion.sum(dim=1).tolist(),
        "confusion": confusion,
    }
