"""Which curves the 2 x 2 figures of `cifarlab compare` and the lockstep studies draw.

The FDU seed's figures put the training curves above and the test curves below. A run records a
test curve only when it trained with `eval.test_curve` (display only: nothing selects on it); the
lower row then shows it, marked as such, and otherwise falls back to the validation curves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple


class Panel(NamedTuple):
    key: str  # the metric's key in an epoch record of metrics.jsonl
    title: str
    percent: bool  # drawn as a percentage


TRAINING_ROW = [Panel("loss", "training loss", False), Panel("train_top1", "training accuracy (%)", True)]
VALIDATION_ROW = [Panel("val_loss", "validation loss", False), Panel("val_top1", "validation accuracy (%)", True)]
TEST_ROW = [Panel("test_loss", "test loss (display only: selects nothing)", False),
            Panel("test_top1", "test accuracy (%) (display only: selects nothing)", True)]


def curve_panels(records: Iterable[dict]) -> list[list[Panel]]:
    """Training above; below, the test curve where any record holds one, else validation."""
    has_test_curve = any(record.get("test_top1") is not None for record in records)
    return [TRAINING_ROW, TEST_ROW if has_test_curve else VALIDATION_ROW]
