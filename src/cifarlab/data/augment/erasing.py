"""Random erasing (Zhong et al. 2017): one box per image, of random area and aspect ratio, filled."""

from __future__ import annotations

import math
from typing import Union

import torch

from cifarlab.data.augment.geometry import uniform


def erase_mask(n: int, height: int, width: int, area: tuple[float, float], ratio: tuple[float, float],
               g: torch.Generator) -> torch.Tensor:
    """(N, 1, H, W) boolean mask of one box per image; a box too large for the image is clipped to it."""
    share = uniform(n, area[0], area[1], g)
    aspect = uniform(n, math.log(ratio[0]), math.log(ratio[1]), g).exp()
    box_h = (share * height * width * aspect).sqrt().round().clamp(1, height)
    box_w = (share * height * width / aspect).sqrt().round().clamp(1, width)
    top = (uniform(n, 0.0, 1.0, g) * (height - box_h + 1)).floor().clamp(max=height - box_h)
    left = (uniform(n, 0.0, 1.0, g) * (width - box_w + 1)).floor().clamp(max=width - box_w)
    rows = torch.arange(height)[None, :]
    cols = torch.arange(width)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + box_h)[:, None])
    in_cols = (cols >= left[:, None]) & (cols < (left + box_w)[:, None])
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]


def random_erasing(x: torch.Tensor, area: tuple[float, float], ratio: tuple[float, float],
                   fill: Union[str, float], g: torch.Generator) -> torch.Tensor:
    """Erase one random box of each image with uniform noise (`fill='random'`) or a grey level."""
    n, _, h, w = x.shape
    mask = erase_mask(n, h, w, area, ratio, g).expand(n, 3, h, w)
    if fill == "random":
        # Noise for the erased pixels only (a sixth of the batch on average), drawn on the CPU from `g`.
        noise = torch.rand(int(mask.sum()), generator=g).to(x.device, x.dtype)
        return x.masked_scatter(mask.to(x.device), noise)
    return x.masked_fill(mask.to(x.device), float(fill))
