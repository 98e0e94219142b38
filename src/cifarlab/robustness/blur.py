"""Blur corruptions: defocus, glass, motion, zoom and Gaussian blur.

Constants are those of the CIFAR version of Hendrycks & Dietterich's generation code. Every
function takes float images (N, C, H, W) in [0, 1] and returns them unclipped.
"""

from __future__ import annotations

import torch
from torch import Tensor

from cifarlab.robustness import filters

# (disk radius, sigma of the 3x3 Gaussian that anti-aliases the disk)
DEFOCUS_BLUR = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1))
# (Gaussian sigma, largest pixel displacement, rounds of displacement)
GLASS_BLUR = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))
# (ImageMagick radius, sigma); the angle is uniform in [-45, 45] degrees per image.
MOTION_BLUR = ((6, 1.0), (6, 1.5), (6, 2.0), (8, 2.0), (9, 2.5))
MOTION_ANGLE = (-45.0, 45.0)
# Zoom factors 1.00, 1.01, ...: how many. The published code takes np.arange(1, end, 0.01),
# whose floating-point length is 7, 12, 16, 21, 26 for ends 1.06, 1.11, 1.16, 1.21, 1.26.
ZOOM_BLUR_FACTORS = (7, 12, 16, 21, 26)
GAUSSIAN_BLUR = (0.4, 0.6, 0.7, 0.8, 1.0)

# The disk kernel lives on a 17 x 17 grid for every radius up to 8 (all CIFAR radii).
_DISK_HALF_WIDTH = 8


def disk_kernel(radius: float, alias_sigma: float) -> Tensor:
    """The defocus kernel: a normalised disk on a 17 x 17 grid, smoothed by a 3x3 Gaussian."""
    offsets = torch.arange(-_DISK_HALF_WIDTH, _DISK_HALF_WIDTH + 1, dtype=torch.float64)
    inside = (offsets.view(-1, 1) ** 2 + offsets.view(1, -1) ** 2 <= radius**2).double()
    disk = (inside / inside.sum()).view(1, 1, *inside.shape)
    taps = torch.exp(-(torch.tensor([-1.0, 0.0, 1.0], dtype=torch.float64) ** 2) / (2 * alias_sigma**2))
    taps = taps / taps.sum()
    # OpenCV's GaussianBlur of the kernel image itself, with its default mirrored border.
    smoothed = filters.separable_filter(disk, taps, "mirror")[0, 0]
    # Only the centre is non-zero for the CIFAR radii: keep that square, so filtering is cheap.
    used = int((smoothed.abs() > 0).nonzero()[:, 0].sub(_DISK_HALF_WIDTH).abs().max())
    return smoothed[_DISK_HALF_WIDTH - used : _DISK_HALF_WIDTH + used + 1,
                    _DISK_HALF_WIDTH - used : _DISK_HALF_WIDTH + used + 1].float()


def defocus_blur(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Blur by a disk, as an out-of-focus lens does."""
    radius, alias_sigma = DEFOCUS_BLUR[severity - 1]
    return filters.filter2d(images, disk_kernel(radius, alias_sigma), "mirror")


def glass_blur(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Blur, move pixels by up to one step up/left at random, blur again: frosted glass.

    The published code walks the image from the bottom-right corner and assigns each pixel
    its (random) upper-left neighbour; because of numpy views its "swap" only copies, and
    every source pixel is one the walk has not yet written. The walk is therefore the
    same as one simultaneous gather, done here for the whole batch at once.
    """
    sigma, delta, rounds = GLASS_BLUR[severity - 1]
    n, c, h, w = images.shape
    images = torch.floor(filters.gaussian_blur(images, sigma).clamp(0, 1) * 255) / 255  # the uint8 step
    rows = torch.arange(h - delta, delta, -1)
    cols = torch.arange(w - delta, delta, -1)
    for _ in range(rounds):
        shape = (n, len(rows), len(cols))
        # Offsets in [-delta, delta - 1], numpy's randint range.
        dy = torch.randint(-delta, delta, shape, generator=generator)
        dx = torch.randint(-delta, delta, shape, generator=generator)
        source = (rows.view(1, -1, 1) + dy) * w + (cols.view(1, 1, -1) + dx)
        target = rows.view(-1, 1) * w + cols.view(1, -1)
        flat = images.reshape(n, c, h * w)
        moved = flat.gather(2, source.reshape(n, 1, -1).expand(n, c, -1).to(images.device))
        flat = flat.clone()
        flat[:, :, target.reshape(-1).to(images.device)] = moved
        images = flat.reshape(n, c, h, w)
    return filters.gaussian_blur(images, sigma)


def motion_blur(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Streak each image along a random direction within 45 degrees of horizontal."""
    radius, sigma = MOTION_BLUR[severity - 1]
    low, high = MOTION_ANGLE
    angles = low + (high - low) * torch.rand(images.shape[0], generator=generator, dtype=torch.float64)
    blurred = filters.motion_blur(images, radius, sigma, angles)
    return torch.round(blurred.clamp(0, 1) * 255) / 255  # ImageMagick hands back 8-bit pixels


def zoom_blur(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Average the image with centre zooms of it by 1.00, 1.01, ...: a camera zooming during exposure."""
    total = torch.zeros_like(images)
    # numpy's arange steps by (start + step) - start; the same floats give the same zoomed sizes
    # (round(26 * 1.2500000000000002) is 33, round(26 * 1.25) is 32).
    increment = (1 + 0.01) - 1
    factors = [1 + index * increment for index in range(ZOOM_BLUR_FACTORS[severity - 1])]
    for factor in factors:
        total += filters.clipped_zoom(images, factor)
    return (images + total) / (len(factors) + 1)


def gaussian_blur(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Gaussian blur of every channel."""
    return filters.gaussian_blur(images, GAUSSIAN_BLUR[severity - 1])
