"""Fixtures for the evaluation tests."""

from types import SimpleNamespace

import pytest
import torch

from .fakes import CIFAR10_CLASSES, colour_classes, tiny_convnet, train_briefly


@pytest.fixture(scope="session")
def synthetic_split():
    """A trained tiny net and 200 held-out images of the colour-coded task."""
    torch.manual_seed(0)
    images, labels = colour_classes(n=600, size=16)  # 16x16 keeps training to a few seconds on 2 cores
    model = train_briefly(tiny_convnet(10), images[:400], labels[:400], steps=30)
    return SimpleNamespace(model=model, images=images[400:], labels=labels[400:], classes=CIFAR10_CLASSES)

