"""CLAHE as part of the input normalisation: every image a run's model sees is equalised the same way.

DL4DS (seeds/004, "Normalization") equalises CIFAR-100 with contrast-limited adaptive histogram
equalisation beside the mean/std normalisation. As normalisation it is one fixed transform of the
data, not an augmentation: training, validation and test images, corrupted copies and submitted
images are all equalised with the same contrast limit, before resizing and the mean/std step.
`data.clahe_clip_limit` turns it on; the `clahe` op of `augment.ops` stays an augmentation (a random
share of the training images, a random limit per image) that evaluation does not repeat.

The result is rounded back to uint8: the training pipeline equalises a split once and keeps its fast
uint8 crop path, and evaluation equalises each uint8 batch the same way before scaling it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from cifarlab.config.recipe import DataConfig
from cifarlab.data.augment.clahe import clahe
from cifarlab.errors import CifarlabError

# Images equalised per pass: the tile histograms of a pass are (N, grid^2, 256) floats.
CHUNK = 1000


@dataclass(frozen=True)
class Clahe:
    """CLAHE of the luma with one contrast limit for every image, on a `grid` x `grid` tiling."""

    clip_limit: float
    grid: int = 4

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) images -> the same images equalised, uint8, on their own device."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            got = f"{images.dtype} {tuple(images.shape)}"
            raise CifarlabError(f"data.clahe_clip_limit equalises the luma of uint8 RGB images (N, 3, H, W), got {got}; "
                                "set data.clahe_clip_limit=null for other images")
        if self.grid > min(images.shape[-2:]):
            raise CifarlabError(f"data.clahe_grid={self.grid} tiles per side do not fit {images.shape[-2]}x{images.shape[-1]} "
                                f"images; use at most {min(images.shape[-2:])}")
        out = torch.empty_like(images)
        for start in range(0, len(images), CHUNK):
            batch = images[start : start + CHUNK].float().div_(255.0)
            limits = torch.full((len(batch),), float(self.clip_limit))
            out[start : start + CHUNK] = clahe(batch, limits, self.grid).mul_(255.0).round_().to(torch.uint8)
        return out


def clahe_from(clip_limit: Optional[float], grid: Optional[int]) -> Optional[Clahe]:
    """The equalisation a contrast limit and grid describe; None when the limit is None (no CLAHE)."""
    return None if clip_limit is None else Clahe(float(clip_limit), int(grid or Clahe.grid))


def clahe_of(data: DataConfig) -> Optional[Clahe]:
    """The equalisation a recipe's data section asks for (`data.clahe_clip_limit`, `data.clahe_grid`), or None."""
    return clahe_from(data.clahe_clip_limit, data.clahe_grid)
