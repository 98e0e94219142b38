"""Calibration: how well the top-1 confidence matches the accuracy (ECE, reliability bins).

Bins split [0, 1] into `bins` equal intervals, each open below and closed above, (lo, hi],
as in Guo et al. 2017; a prediction falls in the bin holding its top-1 probability.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.metrics import check_predictions


def reliability(probs: Tensor, labels: Tensor, bins: int = 15) -> dict:
    """Per-bin mean confidence, accuracy and count of the top-1 predictions.

    Returns a dict of float64 tensors of length `bins`: `confidence`, `accuracy` (NaN in an
    empty bin), `count` (int64), and `edges` (length bins + 1).
    """
    if int(bins) < 1:
        raise CifarlabError(f"bins={bins} must be at least 1")
    probs, labels = check_predictions(probs, labels)
    confidence, preds = probs.max(dim=1)
    # Edges in the probabilities' own dtype, so a confidence exactly on an edge lands below it.
    edges = torch.linspace(0.0, 1.0, bins + 1, dtype=confidence.dtype)
    index = torch.bucketize(confidence, edges[1:-1], right=False)
    count = torch.bincount(index, minlength=bins)
    conf_sum = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, confidence.double())
    correct = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, (preds == labels).double())
    safe = count.clamp(min=1).double()
    empty = count == 0
    return {
        "confidence": torch.where(empty, torch.nan, conf_sum / safe),
        "accuracy": torch.where(empty, torch.nan, correct / safe),
        "count": count,
        "edges": edges.double(),
    }


def expected_calibration_error(probs: Tensor, labels: Tensor, bins: int = 15) -> float:
    """ECE: the count-weighted mean of |accuracy - confidence| over the reliability bins."""
    table = reliability(probs, labels, bins)
    filled = table["count"] > 0
    weight = table["count"][filled].double() / table["count"].sum()
    gap = (table["accuracy"][filled] - table["confidence"][filled]).abs()
    return float((weight * gap).sum())
