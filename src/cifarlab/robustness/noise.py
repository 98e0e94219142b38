"""Noise corruptions: Gaussian, shot (Poisson), impulse (salt and pepper) and speckle noise.

Constants are those of the CIFAR version of Hendrycks & Dietterich's generation code, one
per severity 1-5. Every function takes float images (N, C, H, W) in [0, 1] and returns
them unclipped; `corrupt` clips and quantises.
"""

from __future__ import annotations

import torch
from torch import Tensor

# Standard deviation of the added noise, in [0, 1] pixel units.
GAUSSIAN_NOISE = (0.04, 0.06, 0.08, 0.09, 0.10)
# Photons per unit intensity: fewer photons, more noise.
SHOT_NOISE = (500, 250, 100, 75, 50)
# Fraction of pixel values (each channel on its own) replaced by 0 or 1.
IMPULSE_NOISE = (0.01, 0.02, 0.03, 0.05, 0.07)
# Standard deviation of the multiplicative noise.
SPECKLE_NOISE = (0.06, 0.10, 0.12, 0.16, 0.20)


def gaussian_noise(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Add zero-mean Gaussian noise to every pixel value."""
    noise = torch.randn(images.shape, generator=generator)
    return images + noise.to(images) * GAUSSIAN_NOISE[severity - 1]


def shot_noise(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Replace each value by a Poisson photon count of that mean, scaled back."""
    photons = SHOT_NOISE[severity - 1]
    return torch.poisson(images.cpu() * photons, generator=generator).to(images) / photons


def impulse_noise(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Salt and pepper: each channel value is, with the severity's probability, set to 0 or 1 evenly."""
    hit = torch.rand(images.shape, generator=generator) < IMPULSE_NOISE[severity - 1]
    salt = torch.rand(images.shape, generator=generator) < 0.5
    images = torch.where((hit & salt).to(images.device), torch.ones_like(images), images)
    return torch.where((hit & ~salt).to(images.device), torch.zeros_like(images), images)


def speckle_noise(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Multiplicative Gaussian noise: brighter values get more of it."""
    noise = torch.randn(images.shape, generator=generator).to(images)
    return images + images * noise * SPECKLE_NOISE[severity - 1]
