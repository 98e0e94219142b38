"""classification_metrics against answers worked out by hand or with plain Python loops."""

import math
import random

import pytest
import torch

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.metrics import PROB_FLOOR, classification_metrics, image_losses, most_confused


def test_hand_built_case():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.4, 0.1]])
    labels = torch.tensor([0, 1, 0, 1])  # predictions 0, 1, 2, 0
    m = classification_metrics(probs, labels, 3)
    assert m["top1"] == pytest.approx(0.5)
    assert m["top5"] == pytest.approx(1.0)  # k = min(5, 3) = 3 covers every class
    assert m["loss"] == pytest.approx(-(math.log(0.7) + math.log(0.8) + math.log(0.3) + math.log(0.4)) / 4)
    assert m["confusion"].tolist() == [[1, 0, 1], [1, 1, 0], [0, 0, 0]]
    assert m["per_class_accuracy"] == [0.5, 0.5, None]
    assert m["class_counts"] == [2, 2, 0]


def test_random_case_matches_plain_python():
    rng = random.Random(3)
    n, c = 300, 8
    rows = []
    for _ in range(n):
        raw = [rng.random() ** 3 for _ in range(c)]
        rows.append([v / sum(raw) for v in raw])
    labels = [rng.randrange(c) for _ in range(n)]
    m = classification_metrics(torch.tensor(rows, dtype=torch.float64), torch.tensor(labels), c)

    ranked = [sorted(range(c), key=lambda j: -row[j]) for row in rows]
    assert m["top1"] == pytest.approx(sum(r[0] == y for r, y in zip(ranked, labels)) / n)
    assert m["top5"] == pytest.approx(sum(y in r[:5] for r, y in zip(ranked, labels)) / n)
    assert m["loss"] == pytest.approx(sum(-math.log(row[y]) for row, y in zip(rows, labels)) / n)
    confusion = [[0] * c for _ in range(c)]
    for r, y in zip(ranked, labels):
        confusion[y][r[0]] += 1
    assert m["confusion"].tolist() == confusion
    for k in range(c):
        mine = [r[0] == y for r, y in zip(ranked, labels) if y == k]
        assert m["per_class_accuracy"][k] == pytest.approx(sum(mine) / len(mine))
    assert sum(m["class_counts"]) == n  # every image counted, not a sample


def test_top5_counts_a_label_ranked_fifth_but_not_sixth():
    probs = torch.tensor([[0.30, 0.25, 0.15, 0.12, 0.10, 0.08], [0.30, 0.25, 0.15, 0.12, 0.10, 0.08]])
    m = classification_metrics(probs, torch.tensor([4, 5]), 6)
    assert m["top5"] == pytest.approx(0.5) and m["top1"] == 0.0


def test_zero_probability_on_the_true_class_gives_a_finite_clamped_loss():
    m = classification_metrics(torch.tensor([[1.0, 0.0]]), torch.tensor([1]), 2)
    assert m["loss"] == pytest.approx(-math.log(PROB_FLOOR))


def test_mismatched_inputs_are_rejected():
    with pytest.raises(CifarlabError, match="num_classes"):
        classification_metrics(torch.full((2, 3), 1 / 3), torch.tensor([0, 1]), 4)
    with pytest.raises(CifarlabError, match="labels"):
        classification_metrics(torch.full((2, 3), 1 / 3), torch.tensor([0, 1, 2]), 3)
    with pytest.raises(CifarlabError, match=r"\[0, 2\]"):
        classification_metrics(torch.full((2, 3), 1 / 3), torch.tensor([0, 3]), 3)


def test_most_confused_lists_the_largest_off_diagonal_counts_ties_in_row_order():
    confusion = torch.tensor([[9, 3, 0], [1, 8, 3], [5, 0, 7]])
    pairs = most_confused(confusion, ["a", "b", "c"], k=3)
    assert pairs == [{"true": "c", "predicted": "a", "count": 5},
                     {"true": "a", "predicted": "b", "count": 3},
                     {"true": "b", "predicted": "c", "count": 3}]
    assert most_confused(torch.eye(3, dtype=torch.long) * 4, ["a", "b", "c"]) == []  # no errors, no pairs


def test_image_losses_are_the_per_image_negative_log_likelihood():
    probs = torch.tensor([[0.7, 0.3], [0.4, 0.6], [1.0, 0.0]])
    losses = image_losses(probs, torch.tensor([0, 0, 1]))
    assert losses.tolist() == pytest.approx([-math.log(0.7), -math.log(0.4), -math.log(PROB_FLOOR)])
