"""ECE and reliability bins on cases with a known answer."""

import random

import pytest
import torch

from cifarlab.evaluation.calibration import expected_calibration_error, reliability


def _rows(confidence, n, correct, classes=2):
    """n rows whose top-1 probability is `confidence` on class 0; the first `correct` are labelled 0."""
    rest = (1 - confidence) / (classes - 1)
    probs = torch.tensor([[confidence] + [rest] * (classes - 1)] * n)
    labels = torch.tensor([0] * correct + [1] * (n - correct))
    return probs, labels


def test_known_ece_from_two_bins():
    p1, y1 = _rows(0.9, 4, correct=3)  # accuracy 0.75 at confidence 0.9: gap 0.15
    p2, y2 = _rows(0.6, 4, correct=4)  # accuracy 1.0 at confidence 0.6: gap 0.40
    probs, labels = torch.cat([p1, p2]), torch.cat([y1, y2])
    assert expected_calibration_error(probs, labels, bins=10) == pytest.approx(0.5 * 0.15 + 0.5 * 0.40)


def test_perfectly_calibrated_predictions_have_zero_ece():
    probs, labels = _rows(0.7, 10, correct=7)
    assert expected_calibration_error(probs, labels, bins=15) == pytest.approx(0.0, abs=1e-6)


def test_reliability_bins_hold_counts_confidence_and_accuracy():
    p1, y1 = _rows(0.9, 4, correct=3)
    p2, y2 = _rows(0.6, 2, correct=1)
    table = reliability(torch.cat([p1, p2]), torch.cat([y1, y2]), bins=5)  # bins (0.4,0.6], (0.8,1.0]
    assert table["count"].tolist() == [0, 0, 2, 0, 4]
    assert table["confidence"][2].item() == pytest.approx(0.6) and table["accuracy"][2].item() == 0.5
    assert table["confidence"][4].item() == pytest.approx(0.9) and table["accuracy"][4].item() == 0.75
    assert torch.isnan(table["accuracy"][0])  # empty bins are NaN, not a fake 0
    assert table["edges"].tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_confidence_on_an_edge_falls_in_the_lower_bin():
    probs, labels = _rows(0.5, 3, correct=3, classes=3)  # 0.5 is exact in binary
    assert reliability(probs, labels, bins=2)["count"].tolist() == [3, 0]


def test_ece_matches_a_plain_python_binning():
    rng = random.Random(0)
    rows, labels = [], []
    for _ in range(500):
        raw = [rng.random() ** 4 for _ in range(5)]
        rows.append([v / sum(raw) for v in raw])
        labels.append(rng.randrange(5))
    bins = 15
    stats = [[0, 0.0, 0] for _ in range(bins)]
    for row, y in zip(rows, labels):
        conf = max(row)
        b = min(int(conf * bins - 1e-12), bins - 1)  # (lo, hi] intervals
        stats[b][0] += 1
        stats[b][1] += conf
        stats[b][2] += row.index(conf) == y
    expected = sum(n / 500 * abs(k / n - s / n) for n, s, k in stats if n)
    got = expected_calibration_error(torch.tensor(rows, dtype=torch.float64), torch.tensor(labels), bins)
    assert got == pytest.approx(expected)
