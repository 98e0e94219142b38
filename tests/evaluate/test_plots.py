"""Plots are real PNG files, written atomically, from real inputs."""

import json

import pytest
import torch
from PIL import Image

from cifarlab.errors import CifarlabError
from cifarlab.evaluate.plots import plot_confusion, plot_curves, plot_misclassified, plot_reliability, read_metrics

from .fakes import fake_metrics, write_metrics


def _open(path):
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.format, image.size


def test_confusion_for_100_classes_is_a_large_png(tmp_path):
    g = torch.Generator().manual_seed(0)
    confusion = torch.randint(0, 20, (100, 100), generator=g) + torch.eye(100, dtype=torch.long) * 80
    path = plot_confusion(confusion, [f"class_{i}" for i in range(100)], tmp_path / "confusion.png")
    fmt, (w, h) = _open(path)
    assert fmt == "PNG" and min(w, h) >= 1500  # room for 100 tick labels
    assert [p.name for p in tmp_path.iterdir()] == ["confusion.png"]  # no temp file left behind


def test_misclassified_gallery_and_the_all_correct_case(tmp_path):
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    labels = torch.arange(10) % 3
    preds = labels.clone()
    preds[[1, 4, 7]] = (preds[[1, 4, 7]] + 1) % 3
    assert _open(plot_misclassified(images, labels, preds, ["a", "b", "c"], tmp_path / "wrong.png"))[0] == "PNG"
    assert _open(plot_misclassified(images, labels, labels, ["a", "b", "c"], tmp_path / "none.png"))[0] == "PNG"


def test_curves_from_a_metrics_file(tmp_path):
    write_metrics(tmp_path / "metrics.jsonl", fake_metrics())
    assert _open(plot_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png"))[0] == "PNG"


def test_metrics_reader_drops_a_truncated_last_line_but_not_a_bad_middle_one(tmp_path):
    lines = fake_metrics()
    text = "".join(json.dumps(line) + "\n" for line in lines)
    (tmp_path / "cut.jsonl").write_text(text + '{"kind": "step", "ste')
    assert len(read_metrics(tmp_path / "cut.jsonl")) == len(lines)
    (tmp_path / "bad.jsonl").write_text("not json\n" + text)
    with pytest.raises(CifarlabError, match="line 1"):
        read_metrics(tmp_path / "bad.jsonl")


def test_reliability_diagram(tmp_path):
    probs = torch.softmax(torch.randn(200, 10, generator=torch.Generator().manual_seed(1)) * 3, dim=1)
    labels = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(2))
    assert _open(plot_reliability(probs, labels, tmp_path / "rel.png"))[0] == "PNG"
