"""Pieces of a fake run for the evaluation tests: a learnable toy data set, a tiny conv net, metrics lines."""

from __future__ import annotations

import json

import torch
from torch import nn

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def tiny_convnet(num_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, num_classes),
    )


def train_briefly(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, steps: int = 40, seed: int = 0):
    """A few Adam steps on uint8 images (normalised with MEAN/STD) so the model is really fitted."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, images.shape[0], (64,), generator=g)
        x = (images[idx].float() / 255 - mean) / std
        loss = nn.functional.cross_entropy(model(x), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def colour_classes(n: int = 400, num_classes: int = 10, size: int = 32, seed: int = 0):
    """Images whose class sets the mean colour (plus noise): learnable in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)
    palette = torch.rand(num_classes, 3, 1, 1, generator=g) * 160 + 40
    labels = torch.arange(n) % num_classes
    noise = torch.randn(n, 3, size, size, generator=g) * 30
    images = (palette[labels] + noise).clamp(0, 255).to(torch.uint8)
    return images, labels


def write_metrics(path, lines: list[dict]) -> None:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))


def fake_metrics(epochs: int = 3, steps_per_epoch: int = 4, val_top1=(0.4123, 0.5678, 0.5432)) -> list[dict]:
    """Step and epoch lines in the run's metrics.jsonl format, with known validation accuracies."""
    lines, step = [], 0
    for epoch in range(1, epochs + 1):
        for i in range(steps_per_epoch):
            step += 1
            lines.append({"kind": "step", "step": step, "epoch": epoch - 1 + (i + 1) / steps_per_epoch,
                          "lr": 0.1 / step, "loss": 2.0 / step, "train_top1": None, "images_per_s": 1000.0})
        lines.append({"kind": "epoch", "step": step, "epoch": epoch, "lr": 0.1 / step, "loss": 2.0 / step,
                      "train_top1": 0.3 + 0.1 * epoch, "val_loss": 1.5 / epoch, "val_top1": val_top1[epoch - 1],
                      "images_per_s": 1000.0, "time_s": 1.5 * epoch})
    return lines
