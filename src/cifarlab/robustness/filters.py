"""Batched image filters the corruptions share: Gaussian blur, centre zoom, motion blur, border padding.

Images are float tensors (N, C, H, W) in [0, 1]. Border modes carry scipy.ndimage's names,
because the benchmark's generation code filtered with scipy, scikit-image and OpenCV:
`nearest` repeats the edge pixel (a a | a b c), `reflect` mirrors about the edge (b a | a b c)
and `mirror` mirrors about the edge pixel (c b | a b c), which is OpenCV's BORDER_REFLECT_101.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor


def border_indices(size: int, pad: int, mode: str) -> Tensor:
    """Source index of each of the `size + 2 * pad` positions of a padded axis."""
    positions = torch.arange(-pad, size + pad)
    if mode == "nearest":
        return positions.clamp(0, size - 1)
    if mode == "reflect":
        period = 2 * size
        folded = positions.remainder(period)
        return torch.where(folded < size, folded, period - 1 - folded)
    if mode == "mirror":
        period = max(2 * size - 2, 1)
        folded = positions.remainder(period)
        return torch.where(folded < size, folded, period - folded)
    raise ValueError(f"unknown border mode {mode!r}")


def pad(images: Tensor, amount: int, mode: str) -> Tensor:
    """Pad the last two axes by `amount` on every side, filled by border `mode`."""
    if amount == 0:
        return images
    rows = border_indices(images.shape[-2], amount, mode).to(images.device)
    cols = border_indices(images.shape[-1], amount, mode).to(images.device)
    return images.index_select(-2, rows).index_select(-1, cols)


def gaussian_kernel_1d(sigma: float, truncate: float) -> Tensor:
    """scipy's sampled Gaussian: radius int(truncate * sigma + 0.5), weights summing to one."""
    radius = int(truncate * sigma + 0.5)
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    weights = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (weights / weights.sum()).float()


def separable_filter(images: Tensor, kernel: Tensor, mode: str) -> Tensor:
    """Correlate every channel with `kernel` (odd length) along rows, then along columns."""
    radius = kernel.numel() // 2
    if radius == 0:
        return images * kernel[0]
    n, c, h, w = images.shape
    flat = pad(images, radius, mode).reshape(n * c, 1, h + 2 * radius, w + 2 * radius)
    kernel = kernel.to(images)
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1))
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1))
    return flat.reshape(n, c, h, w)


def gaussian_blur(images: Tensor, sigma: float, mode: str = "nearest", truncate: float = 4.0) -> Tensor:
    """Gaussian blur of each channel with scipy's kernel (scikit-image's defaults: `nearest`, 4 sigma)."""
    return separable_filter(images, gaussian_kernel_1d(sigma, truncate), mode)


def filter2d(images: Tensor, kernel: Tensor, mode: str = "mirror") -> Tensor:
    """Correlate every channel with one odd-sized 2-D kernel (OpenCV's filter2D, centred anchor)."""
    n, c, h, w = images.shape
    radius = kernel.shape[-1] // 2
    flat = pad(images, radius, mode).reshape(n * c, 1, h + 2 * radius, w + 2 * radius)
    return F.conv2d(flat, kernel.to(images).view(1, 1, *kernel.shape)).reshape(n, c, h, w)


def clipped_zoom(images: Tensor, factor: float) -> Tensor:
    """Enlarge the centre by `factor` (bilinear, scipy's `zoom` grid) and crop back to the same size.

    The centre window of side ceil(H / factor) is resized to round(side * factor) with corners
    aligned, as scipy.ndimage.zoom(order=1) does, then its centre H x W is kept.
    """
    height = images.shape[-2]
    side = int(math.ceil(height / factor))
    top = (height - side) // 2
    window = images[..., top : top + side, top : top + side]
    zoomed_side = int(round(side * factor))
    if zoomed_side != side:
        window = F.interpolate(window, size=(zoomed_side, zoomed_side), mode="bilinear", align_corners=True)
    trim = (zoomed_side - height) // 2
    return window[..., trim : trim + height, trim : trim + height]


def motion_blur(images: Tensor, radius: float, sigma: float, angles_degrees: Tensor) -> Tensor:
    """ImageMagick's motion blur, one angle per image: a one-sided Gaussian streak along the angle.

    The kernel has 2 * ceil(radius) + 1 taps with weights exp(-i^2 / (2 sigma^2)), i = 0, 1, ...,
    normalised; tap i reads the pixel i steps along the angle (0 degrees: to the right, 90: down),
    rounded to whole pixels, with the edge pixel repeated beyond the border.
    """
    n, c, h, w = images.shape
    taps = 2 * int(math.ceil(radius)) + 1
    steps = torch.arange(taps, dtype=torch.float64)
    weights = torch.exp(-(steps**2) / (2.0 * sigma * sigma))
    weights = (weights / weights.sum()).to(images)
    angles = torch.deg2rad(angles_degrees.double()).view(n, 1)
    # ImageMagick rounds with ceil(v - 0.5): halves go down, not to even.
    step_x = torch.ceil(steps.view(1, -1) * torch.cos(angles) - 0.5).long()
    step_y = torch.ceil(steps.view(1, -1) * torch.sin(angles) - 0.5).long()
    rows = torch.arange(h).view(1, h, 1)
    cols = torch.arange(w).view(1, 1, w)
    flat = images.reshape(n, c, h * w)
    result = torch.zeros_like(flat)
    for tap in range(taps):
        source_rows = (rows + step_y[:, tap].view(n, 1, 1)).clamp(0, h - 1)
        source_cols = (cols + step_x[:, tap].view(n, 1, 1)).clamp(0, w - 1)
        index = (source_rows * w + source_cols).reshape(n, 1, h * w).expand(n, c, h * w).to(images.device)
        result += weights[tap] * flat.gather(2, index)
    return result.reshape(n, c, h, w)
