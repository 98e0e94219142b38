"""Plots are real PNG files, written atomically, from real inputs."""

import math

import torch
from PIL import Image

from cifarlab.evaluation import plots
from cifarlab.evaluation.metrics import top_losses
from cifarlab.evaluation.plots import plot_confusion, plot_curves, plot_reliability, plot_top_losses

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


def _gallery_titles(monkeypatch, *args, **kwargs) -> list[str]:
    """Draw the gallery for real, keep the PNG, and return the titles of its tiles in order."""
    captured = {}
    real_save = plots.save_figure

    def keep(fig, path, dpi=120):
        captured["fig"] = fig
        return real_save(fig, path, dpi)

    monkeypatch.setattr(plots, "save_figure", keep)
    path = plot_top_losses(*args, **kwargs)
    assert _open(path)[0] == "PNG"
    return [ax.get_title() for ax in captured["fig"].axes if ax.get_title()]


def test_gallery_shows_the_highest_loss_errors_of_every_class_on_class_sorted_data(tmp_path, monkeypatch):
    # 4 classes, 25 images each, sorted by class as a k-shot or class-balanced slice is.
    classes = ["cat", "dog", "ship", "frog"]
    labels = torch.arange(4).repeat_interleave(25)
    g = torch.Generator().manual_seed(0)
    probs = torch.softmax(torch.randn(100, 4, generator=g), dim=1) * 0.1
    probs[torch.arange(100), labels] += 0.9  # mostly right...
    # ...but every cat is a mild mistake (p[true] = 0.45) and a few later images are bad ones.
    probs[:25] = torch.tensor([0.45, 0.55, 0.0, 0.0])
    bad = {30: 0.02, 55: 0.01, 80: 0.05, 81: 0.2}
    for index, p_true in bad.items():
        row = torch.full((4,), (1 - p_true) / 3)
        row[labels[index]] = p_true
        probs[index] = row
    images = torch.randint(0, 256, (100, 3, 8, 8), dtype=torch.uint8, generator=g)

    chosen = top_losses(probs, labels, 6).tolist()
    assert chosen[:4] == [55, 30, 80, 81]  # highest loss first, over all classes
    assert {labels[i].item() for i in chosen} == {0, 1, 2, 3}
    assert (probs.argmax(1) != labels).nonzero().flatten()[:6].tolist() == list(range(6))  # what "first 6" shows

    titles = _gallery_titles(monkeypatch, images, labels, probs, classes, tmp_path / "wrong.png", n=6)
    assert len(titles) == 6
    first_true, first_pred = titles[0].splitlines()[0].split(" / ")
    assert (first_true, first_pred) == ("ship", "cat")  # image 55: true ship, the rest shared, argmax cat
    assert f"loss {-math.log(0.01):.2f}" in titles[0] and "p=0.33" in titles[0]
    assert sum(title.startswith("cat / dog") for title in titles) == 2


def test_gallery_when_every_image_is_right(tmp_path, monkeypatch):
    labels = torch.arange(10) % 3
    probs = torch.nn.functional.one_hot(labels, 3).float()
    images = torch.randint(0, 256, (10, 3, 32, 32), dtype=torch.uint8)
    assert _gallery_titles(monkeypatch, images, labels, probs, ["a", "b", "c"], tmp_path / "none.png") == []
    assert top_losses(probs, labels, 5).numel() == 0


def test_curves_from_a_metrics_file(tmp_path):
    write_metrics(tmp_path / "metrics.jsonl", fake_metrics())
    assert _open(plot_curves(tmp_path / "metrics.jsonl", tmp_path / "curves.png"))[0] == "PNG"


def test_reliability_diagram(tmp_path):
    probs = torch.softmax(torch.randn(200, 10, generator=torch.Generator().manual_seed(1)) * 3, dim=1)
    labels = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(2))
    assert _open(plot_reliability(probs, labels, tmp_path / "rel.png"))[0] == "PNG"
