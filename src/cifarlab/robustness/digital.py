"""Digital corruptions: brightness, contrast, saturation, elastic transform, pixelation, JPEG.

Constants are those of the CIFAR version of Hendrycks & Dietterich's generation code. Every
function takes float images (N, 3, H, W) in [0, 1] and returns them unclipped. Brightness and
saturation change V or S of HSV in closed form (hue and the other component kept), which is
what the published round trip through scikit-image's HSV does; pixelation and JPEG go through
Pillow, as the published code does, one image at a time.
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from cifarlab.robustness import filters

BRIGHTNESS = (0.05, 0.1, 0.15, 0.2, 0.3)  # added to V
CONTRAST = (0.75, 0.5, 0.4, 0.3, 0.15)  # factor on the distance to the channel mean
SATURATE = ((0.3, 0.0), (0.1, 0.0), (1.5, 0.0), (2.0, 0.1), (2.5, 0.2))  # S -> S * a + b
JPEG_QUALITY = (80, 65, 58, 50, 40)
PIXELATE = (0.95, 0.9, 0.85, 0.75, 0.65)  # side of the shrunken image, as a fraction
# (displacement strength, displacement smoothness sigma, affine jitter), as fractions of the side.
ELASTIC = ((0.0, 0.0, 0.08), (0.05, 0.2, 0.07), (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03))


def brightness(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Raise V of HSV: every channel scales by V'/V, so hue and saturation stay."""
    value = images.amax(dim=1, keepdim=True)
    raised = (value + BRIGHTNESS[severity - 1]).clamp(0, 1)
    # A black pixel has no hue: it becomes grey at the new value.
    return torch.where(value > 0, images * raised / value.clamp(min=1e-12), raised.expand_as(images))


def contrast(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Pull every channel towards its mean over the image."""
    mean = images.mean(dim=(2, 3), keepdim=True)
    return (images - mean) * CONTRAST[severity - 1] + mean


def saturate(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Scale and shift S of HSV, keeping hue and value.

    Each channel is V * (1 - S * k), with k = (V - channel) / (V - min) fixed by the hue.
    A grey pixel has hue 0 in scikit-image, k = (0, 1, 1): given saturation, it turns red.
    """
    factor, shift = SATURATE[severity - 1]
    value = images.amax(dim=1, keepdim=True)
    lowest = images.amin(dim=1, keepdim=True)
    spread = value - lowest
    saturation = torch.where(value > 0, spread / value.clamp(min=1e-12), torch.zeros_like(value))
    new_saturation = (saturation * factor + shift).clamp(0, 1)
    red = torch.tensor([0.0, 1.0, 1.0], dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    hue_weights = torch.where(spread > 0, (value - images) / spread.clamp(min=1e-12), red)
    return value * (1 - new_saturation * hue_weights)


def _affine_sources(n: int, side: int, jitter: float, generator: torch.Generator) -> Tensor:
    """Where each output pixel reads from under a random affine map: (n, side, side, 2) as (x, y).

    Three anchor points (the corners of a square about the centre) move by up to `jitter`
    pixels; the map takes the anchors to their moved places, and each output pixel reads the
    input at the inverse image of its position (OpenCV's warpAffine).
    """
    centre, reach = float(side // 2), float(side // 3)
    anchors = torch.tensor([[centre + reach, centre + reach], [centre + reach, centre - reach],
                            [centre - reach, centre - reach]], dtype=torch.float64)
    moved = anchors + (torch.rand(n, 3, 2, generator=generator, dtype=torch.float64) * 2 - 1) * jitter
    homogeneous = torch.cat([anchors, torch.ones(3, 1, dtype=torch.float64)], dim=1).expand(n, 3, 3)
    forward = torch.linalg.solve(homogeneous, moved).transpose(1, 2)  # (n, 2, 3): moved = A @ [p, 1]
    linear, offset = forward[:, :, :2], forward[:, :, 2:]
    ys, xs = torch.meshgrid(torch.arange(side, dtype=torch.float64), torch.arange(side, dtype=torch.float64),
                            indexing="ij")
    targets = torch.stack([xs, ys], dim=-1).view(1, -1, 2, 1)
    sources = torch.linalg.solve(linear.unsqueeze(1), targets - offset.unsqueeze(1))
    return sources.view(n, side, side, 2).float()


def elastic_transform(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """A random affine warp, then a smooth random displacement field: the image wobbles."""
    n, _, h, w = images.shape
    strength, smoothness, jitter = (fraction * h for fraction in ELASTIC[severity - 1])
    sources = _affine_sources(n, h, jitter, generator).to(images.device)
    # Mirrored about the edge pixel (OpenCV's BORDER_REFLECT_101): align_corners=True reflection.
    grid = sources / (h - 1) * 2 - 1
    images = F.grid_sample(images, grid.to(images), mode="bilinear", padding_mode="reflection", align_corners=True)
    if strength == 0:
        return images
    field = torch.rand(n, 2, h, w, generator=generator).to(images) * 2 - 1
    field = filters.gaussian_blur(field, smoothness, mode="reflect", truncate=3.0) * strength
    ys, xs = torch.meshgrid(torch.arange(h, device=images.device), torch.arange(w, device=images.device), indexing="ij")
    columns = xs + field[:, 0]
    rows = ys + field[:, 1]
    # Mirrored about the image border (scipy's `reflect`): align_corners=False reflection.
    grid = torch.stack([(2 * columns + 1) / w - 1, (2 * rows + 1) / h - 1], dim=-1)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _through_pillow(images: Tensor, change) -> Tensor:
    """Apply `change(PIL image) -> PIL image` to each image; float [0, 1] in and out."""
    pixels = torch.round(images.clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    changed = np.stack([np.asarray(change(Image.fromarray(image)).convert("RGB")) for image in pixels])
    return torch.from_numpy(changed).permute(0, 3, 1, 2).to(images) / 255


def pixelate(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Shrink with a box filter and enlarge back with one: blocky pixels."""
    h, w = images.shape[-2:]
    small = (int(w * PIXELATE[severity - 1]), int(h * PIXELATE[severity - 1]))
    return _through_pillow(images, lambda image: image.resize(small, Image.BOX).resize((w, h), Image.BOX))


def jpeg_compression(images: Tensor, severity: int, generator: torch.Generator) -> Tensor:
    """Encode as JPEG at the severity's quality and decode again (Pillow's encoder)."""
    quality = JPEG_QUALITY[severity - 1]

    def compress(image: Image.Image) -> Image.Image:
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        buffer.seek(0)
        return Image.open(buffer)

    return _through_pillow(images, compress)
