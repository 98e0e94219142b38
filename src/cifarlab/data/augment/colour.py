"""Colour ops on float (N, 3, H, W) images in [0, 1], each image with its own factor.

Factors are (N,) tensors; the maths follows torchvision's functional ops (blend with a degenerate
image, then clamp), written once for the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

_LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as Pillow and torchvision


def per_image(values: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(N,) values shaped (N, 1, 1, 1) on x's device, to broadcast over an image batch."""
    return values.to(device=x.device, dtype=x.dtype).view(-1, 1, 1, 1)


def grey(x: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) luma of RGB images."""
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def blend(x: torch.Tensor, other: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """factor * x + (1 - factor) * other, clamped: factor 1 keeps x, 0 gives `other`."""
    f = per_image(factors, x)
    return (f * x + (1.0 - f) * other).clamp_(0.0, 1.0)


def brightness(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return (x * per_image(factors, x)).clamp_(0.0, 1.0)


def contrast(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return blend(x, grey(x).mean(dim=(2, 3), keepdim=True), factors)


def saturation(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    return blend(x, grey(x), factors)


def sharpness(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Blend with a 3x3-smoothed copy (borders kept), as Pillow's ImageEnhance.Sharpness."""
    kernel = torch.tensor([[1.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 1.0]], device=x.device) / 13.0
    smooth = F.conv2d(x, kernel.expand(3, 1, 3, 3).to(x.dtype), groups=3)
    degenerate = x.clone()
    degenerate[:, :, 1:-1, 1:-1] = smooth
    return blend(x, degenerate, factors)


def hue(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Rotate each image's hue by its shift, a share of a full turn in [-0.5, 0.5]."""
    h, s, v = _rgb_to_hsv(x)
    h = (h + per_image(shifts, x)).remainder_(1.0)
    return _hsv_to_rgb(h, s, v)


def _rgb_to_hsv(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r, g, b = x.unbind(1)
    high, low = x.max(1).values, x.min(1).values
    chroma = high - low
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    hue = torch.where(high == r, (g - b) / safe, torch.where(high == g, 2.0 + (b - r) / safe, 4.0 + (r - g) / safe))
    hue = torch.where(chroma > 0, hue / 6.0, torch.zeros_like(hue)).remainder(1.0)
    sat = torch.where(high > 0, chroma / torch.where(high > 0, high, torch.ones_like(high)), torch.zeros_like(high))
    return hue.unsqueeze(1), sat.unsqueeze(1), high.unsqueeze(1)


def _hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    # The closed form f(n) = v - v s max(0, min(k, 4 - k, 1)), k = (n + 6h) mod 6, for n = 5, 3, 1.
    out = []
    for n in (5.0, 3.0, 1.0):
        k = (n + 6.0 * h).remainder(6.0)
        out.append(v - v * s * torch.minimum(k, 4.0 - k).clamp(0.0, 1.0))
    return torch.cat(out, 1).clamp_(0.0, 1.0)


def levels(x: torch.Tensor) -> torch.Tensor:
    """The uint8 level (0..255, as float) of each pixel value."""
    return (x * 255.0).round_().clamp_(0.0, 255.0)


def posterize(x: torch.Tensor, bits: torch.Tensor) -> torch.Tensor:
    """Keep the top `bits` bits of each image's 8-bit values."""
    step = per_image(2.0 ** (8 - bits.float()), x)
    return (levels(x).div_(step).floor_().mul_(step)) / 255.0


def solarize(x: torch.Tensor, thresholds: torch.Tensor) -> torch.Tensor:
    """Invert the pixel values at or above each image's threshold (in [0, 1])."""
    return torch.where(x >= per_image(thresholds, x), 1.0 - x, x)


def autocontrast(x: torch.Tensor) -> torch.Tensor:
    """Stretch each channel of each image to span [0, 1]; flat channels stay as they are."""
    low = x.amin(dim=(2, 3), keepdim=True)
    high = x.amax(dim=(2, 3), keepdim=True)
    span = high - low
    return torch.where(span > 0, (x - low) / torch.where(span > 0, span, torch.ones_like(span)), x)


def equalize(x: torch.Tensor) -> torch.Tensor:
    """Histogram-equalise each channel of each image (Pillow's ImageOps.equalize rule), batched."""
    n, c, h, w = x.shape
    values = levels(x).long().view(n * c, h * w)
    hist = torch.zeros(n * c, 256, device=x.device).scatter_add_(1, values, torch.ones_like(values, dtype=torch.float))
    # Pillow's step ignores the count of the highest level present.
    top = 255 - (hist.flip(1) > 0).float().argmax(1)
    last = hist.gather(1, top[:, None]).squeeze(1)
    step = ((h * w - last) / 255.0).floor()
    safe = torch.where(step > 0, step, torch.ones_like(step))[:, None]
    lut = ((hist.cumsum(1) + (safe / 2).floor()) / safe).floor()
    lut = torch.cat([torch.zeros(n * c, 1, device=x.device), lut[:, :-1]], 1).clamp_(0, 255)
    out = lut.gather(1, values).view(n, c, h, w) / 255.0
    return torch.where((step > 0).view(n, c, 1, 1), out, x)
