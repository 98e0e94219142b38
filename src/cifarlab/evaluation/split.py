"""Write one scored split's files into a run folder; `evaluate_split` scores and writes in one call.

Files written into `out_dir` for split `<s>` (names from `cifarlab.runs`):
    eval_<s>.json            top1, top5, loss, ece, per-class accuracy by class name, most
                             confused class pairs, tta, which model was scored, ...
    confusion_<s>.csv        first row "true\\pred" + class names; then one row per true class:
                             its name followed by the counts predicted as each class
    confusion_<s>.png        row-normalised confusion matrix
    misclassified_<s>.png    the highest-loss errors over all classes, titled true / predicted,
                             confidence and loss
    reliability_<s>.png      reliability diagram with the ECE
Every file is written atomically, the JSON last: its presence says the split is complete.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from torch import Tensor, nn

from cifarlab.atomic import write_text
from cifarlab.errors import CifarlabError
from cifarlab.evaluation.plots import plot_confusion, plot_reliability, plot_top_losses
from cifarlab.evaluation.scoring import Evaluation, check_labels, score_split
from cifarlab.evaluation.settings import EvalSettings
from cifarlab.runs import split_files
from cifarlab.tables import csv_rows_text

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def check_split_name(split_name: str) -> str:
    """Return `split_name` if it can be part of a file name, else raise a CifarlabError."""
    if not _SPLIT_NAME.match(split_name or ""):
        raise CifarlabError(f"split_name {split_name!r} is not usable in a file name; use letters, digits, _ - .")
    return split_name


def confusion_csv(confusion: Tensor, classes: Sequence[str]) -> str:
    """CSV text of a confusion matrix: header of class names, one labelled row per true class."""
    return csv_rows_text(["true\\pred", *classes], [[name, *row] for name, row in zip(classes, confusion.tolist())])


def write_split(evaluation: Evaluation, images: Tensor, labels: Tensor, classes: Sequence[str],
                out_dir: str | os.PathLike, split_name: str, *, misclassified: int = 32) -> dict:
    """Write a scored split's JSON, confusion CSV and PNG, top-loss gallery and reliability diagram.

    `images` and `labels` are those `evaluation` was scored on (the gallery shows the images).
    Returns what eval_<split>.json holds.
    """
    check_split_name(split_name)
    labels = check_labels(images, labels, classes)
    if evaluation.probs.shape != (labels.shape[0], len(classes)):
        raise CifarlabError(
            f"the evaluation holds {tuple(evaluation.probs.shape)} probabilities for {labels.shape[0]} images "
            f"of {len(classes)} classes; write it with the images and classes it was scored on"
        )
    out_dir = Path(out_dir)
    files = split_files(split_name)
    summary = {"split": split_name, **evaluation.summary, "files": files}
    write_text(out_dir / files["confusion_csv"], confusion_csv(evaluation.confusion, classes))
    plot_confusion(evaluation.confusion, classes, out_dir / files["confusion_png"])
    plot_top_losses(images, labels, evaluation.probs, classes, out_dir / files["misclassified"], n=misclassified)
    bins = evaluation.summary["reliability"]["bins"]
    plot_reliability(evaluation.probs, labels, out_dir / files["reliability"], bins=bins)
    write_text(out_dir / files["eval"], json.dumps(summary, indent=2) + "\n")
    return summary


def evaluate_split(model: nn.Module, images: Tensor, labels: Tensor, classes: Sequence[str], out_dir: str | os.PathLike,
                   settings: EvalSettings, *, misclassified: int = 32, model_label: Optional[str] = None) -> dict:
    """Score `images` (uint8, N x C x H x W) against `labels` with `settings` and write the files of
    split `settings.split` (see above).

    Returns what eval_<split>.json holds, plus `confusion` (C x C int64 tensor) and `probs` (N x C
    float32 tensor) for callers that need them.
    """
    check_split_name(settings.split)  # before any work: a bad name must not cost a pass over the images
    evaluation = score_split(model, images, labels, classes, settings, model_label=model_label)
    summary = write_split(evaluation, images, labels, classes, out_dir, settings.split, misclassified=misclassified)
    return {**summary, "confusion": evaluation.confusion, "probs": evaluation.probs}
