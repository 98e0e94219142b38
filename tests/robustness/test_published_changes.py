"""Every corruption changes images as much as the published CIFAR-10-C code does, at every severity.

`published_changes.json` holds the published code's mean absolute pixel change per corruption
and severity on fixed CIFAR-10 test images; `make_published_stats.py` beside it says how it was
made. cifarlab's own random draws differ from the published ones, so the comparison is of the
average amount, not of pixels.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cifarlab.robustness import CORRUPTIONS, SEVERITIES, corrupt
from tests.robustness import make_published_stats

TABLE = json.loads((Path(__file__).parent / "published_changes.json").read_text())
# Within 12% of the published mean change (a generated frost texture stands in for the photographs).
TOLERANCE = 0.12


@pytest.fixture(scope="module")
def reference_images(cifar10) -> torch.Tensor:
    """The CIFAR-10 test images the published changes were measured on."""
    return cifar10.test_images[torch.tensor(TABLE["images"]["indices"])]


def test_the_table_covers_every_corruption_at_every_severity_on_the_documented_images():
    assert list(TABLE["changes"]) == list(CORRUPTIONS) == list(make_published_stats.CORRUPTIONS)
    assert all(len(changes) == len(SEVERITIES) for changes in TABLE["changes"].values())
    assert TABLE["images"]["indices"] == make_published_stats.image_indices()


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_corruption_changes_images_by_the_published_amount_at_every_severity(name, reference_images):
    images = reference_images.float()
    changes = [(corrupt(reference_images, name, severity, seed=0).float() - images).abs().mean().item()
               for severity in SEVERITIES]
    published = TABLE["changes"][name]
    ratios = [change / expected for change, expected in zip(changes, published)]
    assert all(abs(ratio - 1) <= TOLERANCE for ratio in ratios), (
        f"{name}: cifarlab {[round(change, 2) for change in changes]} against published {published}")
