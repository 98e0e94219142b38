"""Random textures the weather corruptions lay over images: plasma fractals (fog) and frost.

The published frost corruption crops photographs of frost on glass shipped with the
benchmark's code. cifarlab ships no photographs: `frost_textures` draws a fixed set of
ice-crystal textures procedurally (mottled rime plus bright branching needles, tinted
towards blue-green), the same on every machine. Their brightness, spread and tint are set so
that the blend changes images as much as the photographs do at every severity (see
`_BRIGHTNESS`); their structure differs: needles and rime rather than the photographs'
broad translucent patches. Where a user has the photographs, `frost_photos` reads them and
reduces them as the published code does.
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from cifarlab.errors import CifarlabError
from cifarlab.robustness import filters


def _perturbed_mean(total: Tensor, wibble: float, generator: torch.Generator) -> Tensor:
    noise = torch.rand(total.shape, generator=generator, dtype=torch.float64) * 2 - 1
    # The published code scales uniform(-wibble, wibble) by wibble once more; kept for its look.
    return total / 4 + wibble * wibble * noise


def plasma_fractal(count: int, size: int, decay: float, generator: torch.Generator) -> Tensor:
    """`count` diamond-square height maps (count, size, size) in [0, 1]; `size` a power of two.

    Each halving of the grid adds midpoints (square step, then diamond step) at the mean of
    their neighbours plus noise; the noise shrinks by `decay` at each level, so a larger
    decay gives a smoother map. The map wraps around at its edges.
    """
    if size & (size - 1):
        raise ValueError(f"plasma size {size} is not a power of two")
    heights = torch.zeros(count, size, size, dtype=torch.float64)
    step, wibble = size, 100.0
    while step >= 2:
        half = step // 2
        corners = heights[:, ::step, ::step]
        square = corners + corners.roll(-1, dims=1)
        square = square + square.roll(-1, dims=2)
        heights[:, half::step, half::step] = _perturbed_mean(square, wibble, generator)
        centres = heights[:, half::step, half::step]
        corners = heights[:, ::step, ::step]
        # Midpoints on the corner rows: centres above and below, corners left and right.
        top = centres + centres.roll(1, dims=1) + corners + corners.roll(-1, dims=2)
        heights[:, ::step, half::step] = _perturbed_mean(top, wibble, generator)
        # Midpoints on the corner columns: centres left and right, corners above and below.
        side = centres + centres.roll(1, dims=2) + corners + corners.roll(-1, dims=1)
        heights[:, half::step, ::step] = _perturbed_mean(side, wibble, generator)
        step //= 2
        wibble /= decay
    heights -= heights.amin(dim=(1, 2), keepdim=True)
    return (heights / heights.amax(dim=(1, 2), keepdim=True).clamp(min=1e-12)).float()


# Six textures as the benchmark has six photographs; like the published code, only the first
# five are ever drawn.
FROST_TEXTURES = 6
FROST_DRAWN = 5
FROST_SIDE = 128
# The published photographs, in the published code's order (hendrycks/robustness,
# ImageNet-C/create_c/make_cifar_c.py); it draws only the first FROST_DRAWN.
FROST_PHOTOS = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
# The published code shrinks each photograph by 0.2 before cropping.
FROST_PHOTO_STEP = 5
_CROP_SIDE = 32
_FROST_SEED = 1991
_NEEDLES = 70
# Mean brightness of each texture, and the spread (standard deviation) of its values about it, in
# [0, 1] units before the tint. Chosen so that the blend changes images by the published
# photographs' mean absolute amount at every severity (within 3% on the images of
# tests/robustness/published_changes.json); the shrunk photographs' own means run from 0.48 to 0.81.
_BRIGHTNESS = (0.58, 0.64, 0.72, 0.80, 0.68, 0.66)
_SPREAD = 0.15
# Red to blue: the ratio of the photographs' mean channels (about 0.57, 0.66, 0.70), a cold cast.
_TINT = (0.81, 0.93, 1.0)


def _needle_layer(side: int, generator: torch.Generator) -> Tensor:
    """Bright crystal needles with side branches, anti-aliased, as one (side, side) layer."""
    starts = torch.rand(_NEEDLES, 2, generator=generator) * side
    angles = torch.rand(_NEEDLES, generator=generator) * 2 * math.pi
    lengths = 6 + torch.rand(_NEEDLES, generator=generator) * 30
    segments = [(starts, angles, lengths)]
    # Two branches per needle, from a point along it, at +-60 degrees, a third as long.
    for turn in (math.pi / 3, -math.pi / 3):
        along = torch.rand(_NEEDLES, 1, generator=generator)
        direction = torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
        segments.append((starts + along * lengths.view(-1, 1) * direction, angles + turn, lengths / 3))
    begin = torch.cat([start for start, _, _ in segments])
    angle = torch.cat([turned for _, turned, _ in segments])
    length = torch.cat([extent for _, _, extent in segments])
    end = begin + length.view(-1, 1) * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    brightness = 0.4 + 0.6 * torch.rand(len(begin), generator=generator)
    grid = torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="xy"), dim=-1).float()
    points = grid.view(-1, 1, 2)
    span = (end - begin).view(1, -1, 2)
    # Distance from every pixel to every segment (wrapping is not needed: crops stay inside).
    t = (((points - begin) * span).sum(-1) / (span * span).sum(-1).clamp(min=1e-6)).clamp(0, 1)
    distance = (points - begin - t.unsqueeze(-1) * span).norm(dim=-1)
    strokes = torch.exp(-0.5 * (distance / 0.6) ** 2) * brightness
    return strokes.amax(dim=1).view(side, side)


@functools.lru_cache(maxsize=1)
def frost_textures() -> Tensor:
    """The fixed frost textures: (FROST_TEXTURES, 3, FROST_SIDE, FROST_SIDE) float in [0, 1]."""
    generator = torch.Generator().manual_seed(_FROST_SEED)
    rime = plasma_fractal(FROST_TEXTURES, FROST_SIDE, 1.6, generator)
    layers = []
    for index in range(FROST_TEXTURES):
        needles = _needle_layer(FROST_SIDE, generator)
        layers.append((0.55 * rime[index] + needles).clamp(0, 1))
    texture = filters.gaussian_blur(torch.stack(layers).unsqueeze(1), 0.5)
    mean = texture.mean(dim=(1, 2, 3), keepdim=True)
    spread = texture.std(dim=(1, 2, 3), keepdim=True)
    brightness = torch.tensor(_BRIGHTNESS).view(-1, 1, 1, 1)
    texture = (brightness + (texture - mean) / spread * _SPREAD).clamp(0, 1)
    return texture * torch.tensor(_TINT).view(1, 3, 1, 1)


def frost_photos(folder: str | os.PathLike) -> tuple[Tensor, ...]:
    """The published frost photographs in `folder`, shrunk as the published code shrinks them.

    Returns the first FROST_DRAWN of FROST_PHOTOS (the ones it draws) as float (3, H, W) in
    [0, 1]; a folder missing any of them, or holding an unreadable or too small one, is a
    CifarlabError naming the files it needs.
    """
    folder = Path(folder)
    needed = FROST_PHOTOS[:FROST_DRAWN]
    missing = [name for name in needed if not (folder / name).is_file()]
    if missing:
        raise CifarlabError(
            f"frost image folder {folder} has no {', '.join(missing)}; it needs the published CIFAR-10-C frost "
            f"images {', '.join(needed)} (from hendrycks/robustness, ImageNet-C/create_c), or leave out "
            "--frost-images to use the generated frost texture")
    return tuple(_shrunk_photo(folder / name) for name in needed)


def _shrunk_photo(path: Path) -> Tensor:
    try:
        with Image.open(path) as photo:
            pixels = np.asarray(photo.convert("RGB"))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise CifarlabError(f"{path} is not a readable image ({exc}); copy the published frost image again") from exc
    # The published code shrinks with OpenCV's bilinear resize by 0.2. With its half-pixel centres,
    # output pixel i sits exactly on input pixel 5 * i + 2, so the shrink is that sampling (checked
    # against OpenCV on the six published photographs: identical).
    shrunk = pixels[FROST_PHOTO_STEP // 2 :: FROST_PHOTO_STEP, FROST_PHOTO_STEP // 2 :: FROST_PHOTO_STEP]
    if min(shrunk.shape[:2]) <= _CROP_SIDE:
        raise CifarlabError(f"{path} is {pixels.shape[1]}x{pixels.shape[0]}, {shrunk.shape[1]}x{shrunk.shape[0]} "
                            f"once shrunk by 0.2, too small for {_CROP_SIDE}x{_CROP_SIDE} crops; use the published "
                            "frost image")
    return torch.from_numpy(shrunk.copy()).permute(2, 0, 1).float() / 255
