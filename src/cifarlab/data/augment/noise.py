"""Additive Gaussian noise, each image with its own standard deviation."""

from __future__ import annotations

import torch

from cifarlab.data.augment.colour import per_image


def gaussian_noise(x: torch.Tensor, stds: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """x + std * N(0, 1) per pixel, clamped to [0, 1]; the noise is drawn on the CPU from `g`.

    Drawing on the CPU keeps a seed's noise the same on every device; for CIFAR batches the copy
    to the device costs less than a step of the smallest model.
    """
    noise = torch.randn(x.shape, generator=g).to(x.device, x.dtype)
    return (x + per_image(stds, x) * noise).clamp_(0.0, 1.0)
