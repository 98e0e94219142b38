"""Contrast-limited adaptive histogram equalisation (CLAHE) of the luma, batched, each image its own limit.

Equalising the luma and keeping the chroma avoids the colour casts of equalising R, G and B apart
(as OpenCV users do through the Lab L channel). One histogram per tile for the whole batch by
`scatter_add`, contrast-limited, turned into per-tile lookup tables and blended bilinearly between
tile centres.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cifarlab.data.augment.colour import grey, levels


def clahe(x: torch.Tensor, clip_limits: torch.Tensor, grid: int) -> torch.Tensor:
    """CLAHE of float (N, 3, H, W) images in [0, 1] on a `grid` x `grid` tiling, limit per image."""
    n, _, h, w = x.shape
    luma = grey(x)
    pad_h, pad_w = -h % grid, -w % grid
    padded = F.pad(luma, (0, pad_w, 0, pad_h), mode="reflect") if pad_h or pad_w else luma
    values = levels(padded).long().squeeze(1)  # (N, H', W')
    tile_h, tile_w = values.shape[1] // grid, values.shape[2] // grid
    tiles = values.view(n, grid, tile_h, grid, tile_w).permute(0, 1, 3, 2, 4).reshape(n, grid * grid, -1)
    hist = torch.zeros(n, grid * grid, 256, device=x.device)
    hist.scatter_add_(2, tiles, torch.ones_like(tiles, dtype=hist.dtype))
    # Clip each bin at limit x (mean count per bin) and spread the excess evenly over all bins. OpenCV
    # raises a limit under one count to one; on CIFAR's small tiles (64 pixels for grid 4) that makes
    # every limit up to 4 alike, so fractional limits are kept: the strength still varies per image.
    pixels = tile_h * tile_w
    limit = (clip_limits.to(x.device).float() * pixels / 256.0).view(n, 1, 1)
    excess = (hist - limit).clamp(min=0).sum(2, keepdim=True)
    hist = hist.clamp(max=limit) + excess / 256.0
    lut = (hist.cumsum(2) / pixels).clamp(max=1.0).view(n, grid, grid, 256)
    equalised = _interpolate_tiles(lut, levels(luma).long().squeeze(1), tile_h, tile_w)
    # Scale R, G and B alike by the new luma over the old: the chroma stays, the contrast changes.
    gain = equalised.unsqueeze(1) / luma.clamp(min=1.0 / 255.0)
    # A black pixel has no chroma to keep: it becomes the grey of its new luma.
    return torch.where(luma > 0, x * gain, equalised.unsqueeze(1).expand_as(x)).clamp_(0.0, 1.0)


def _interpolate_tiles(lut: torch.Tensor, values: torch.Tensor, tile_h: int, tile_w: int) -> torch.Tensor:
    """Each pixel's level mapped by the four nearest tiles' tables, weighted by distance to their centres."""
    n, grid = lut.shape[:2]
    h, w = values.shape[1:]

    def neighbours(size: int, tile: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        position = ((torch.arange(size, device=lut.device) + 0.5) / tile - 0.5).clamp(0, grid - 1)
        low = position.floor().long()
        return low, (low + 1).clamp(max=grid - 1), position - low

    y0, y1, wy = neighbours(h, tile_h)
    x0, x1, wx = neighbours(w, tile_w)
    flat = lut.view(n, grid * grid * 256)

    def look(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
        index = (rows[:, None] * grid + cols[None, :]) * 256  # (H, W) tile offsets
        return flat.gather(1, (index[None] + values).view(n, -1)).view(n, h, w)

    wy, wx = wy[None, :, None], wx[None, None, :]
    top = look(y0, x0) * (1 - wx) + look(y0, x1) * wx
    bottom = look(y1, x0) * (1 - wx) + look(y1, x1) * wx
    return top * (1 - wy) + bottom * wy
