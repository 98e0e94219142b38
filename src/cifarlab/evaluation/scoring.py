"""Score a model on one split, writing nothing: the numbers of eval_<split>.json plus probabilities and confusion."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.calibration import expected_calibration_error, reliability
from cifarlab.evaluation.metrics import classification_metrics, most_confused
from cifarlab.evaluation.predict import predict
from cifarlab.evaluation.settings import EvalSettings

# Pairs of classes listed as most confused: enough to see the pattern, short enough to read.
MOST_CONFUSED = 10


@dataclass
class Evaluation:
    """One split scored: `summary` is what eval_<split>.json holds (less the split's name and
    file names, which belong to writing), `probs` the (N, C) float32 class probabilities and
    `confusion` the (C, C) int64 counts, rows = true class."""

    summary: dict
    probs: Tensor
    confusion: Tensor


def _finite_or_none(values: Tensor) -> list[Optional[float]]:
    return [v if math.isfinite(v) else None for v in values.tolist()]


def check_labels(images: Tensor, labels: Tensor, classes: Sequence[str]) -> Tensor:
    """Labels as a CPU int64 vector, one per image, with `classes` a non-empty list of distinct names."""
    if len(set(classes)) != len(classes) or not classes:
        raise CifarlabError("classes must be a non-empty list of distinct names, one per model output")
    labels = torch.as_tensor(labels).long().cpu()
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise CifarlabError(f"{images.shape[0]} images but labels of shape {tuple(labels.shape)}; give one per image")
    return labels


def score_split(model: nn.Module, images: Tensor, labels: Tensor, classes: Sequence[str], settings: EvalSettings,
                *, model_label: Optional[str] = None) -> Evaluation:
    """Predict `images` (uint8, N x C x H x W) with `settings` and score them against `labels`; writes no file.

    `model_label` says which weights were scored (e.g. "best checkpoint", "EMA weights") so a
    report can tell evaluations of different models apart.
    """
    labels = check_labels(images, labels, classes)
    probs = predict(model, images, settings)
    scores = classification_metrics(probs, labels, len(classes))
    summary = {
        "model_label": model_label,
        "tta": settings.tta,
        "num_images": int(labels.shape[0]),
        "num_classes": len(classes),
        "top1": scores["top1"],
        "top5": scores["top5"],
        "top5_k": min(5, len(classes)),
        "loss": scores["loss"],
        **_class_and_calibration_entries(probs, labels, settings.bins, scores, classes),
    }
    return Evaluation(summary=summary, probs=probs, confusion=scores["confusion"])


def _class_and_calibration_entries(probs: Tensor, labels: Tensor, bins: int, scores: dict, classes: Sequence[str]) -> dict:
    """The summary's entries after the loss, in eval_<split>.json's order: ECE, per-class numbers, reliability."""
    table = reliability(probs, labels, bins)
    return {
        "ece": expected_calibration_error(probs, labels, bins),
        "per_class_accuracy": dict(zip(classes, scores["per_class_accuracy"])),
        "class_counts": dict(zip(classes, scores["class_counts"])),
        "most_confused": most_confused(scores["confusion"], classes, MOST_CONFUSED),
        "reliability": {
            "bins": bins,
            "confidence": _finite_or_none(table["confidence"]),
            "accuracy": _finite_or_none(table["accuracy"]),
            "count": table["count"].tolist(),
        },
    }
