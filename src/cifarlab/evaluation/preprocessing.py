"""uint8 images -> model inputs at evaluation: CLAHE when the run trained with it, [0, 1], resize, centre crop, mean/std."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from cifarlab.data.equalise import Clahe
from cifarlab.errors import CifarlabError

Size = int | Sequence[int] | None


def size_pair(size: Size, what: str) -> tuple[int, int] | None:
    """`size` as (height, width): one int is a square; None stays None."""
    if size is None:
        return None
    pair = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(pair) != 2 or min(pair) < 1:
        raise CifarlabError(f"{what}={size!r} is not a size; give one positive int or (height, width)")
    return pair


def centre_crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """The central `size` = (height, width) window of a batch."""
    h, w = x.shape[-2:]
    ch, cw = size
    if ch > h or cw > w:
        raise CifarlabError(f"crop {ch}x{cw} is larger than the {h}x{w} images; crop to at most the image size")
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top : top + ch, left : left + cw]


def preprocess(
    batch: Tensor,
    mean: Tensor,
    std: Tensor,
    resize: tuple[int, int] | None = None,
    crop: tuple[int, int] | None = None,
) -> Tensor:
    """uint8 batch -> float in [0,1] -> optional resize and centre crop -> per-channel normalised."""
    x = batch.float().div_(255.0)
    if resize is not None:
        x = F.interpolate(x, size=resize, mode="bilinear", align_corners=False, antialias=False)
    if crop is not None:
        x = centre_crop(x, crop)
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


@dataclass(frozen=True)
class Preprocessing:
    """What turns a run's uint8 images into the model's inputs, in this order.

    clahe       the run's CLAHE normalisation (`cifarlab.data.equalise`), None when it trained without;
    resize      bilinear resize to (height, width) (the side the run trained at), None: native size;
    crop        centre crop to (height, width) after the resize, None: none;
    mean, std   per-channel normalisation of [0, 1] pixels.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    resize: Optional[tuple[int, int]] = None
    crop: Optional[tuple[int, int]] = None
    clahe: Optional[Clahe] = None

    def __post_init__(self) -> None:
        # Lists and single sides are accepted and stored as tuples, so equal settings compare equal.
        object.__setattr__(self, "mean", tuple(float(value) for value in self.mean))
        object.__setattr__(self, "std", tuple(float(value) for value in self.std))
        object.__setattr__(self, "resize", size_pair(self.resize, "resize"))
        object.__setattr__(self, "crop", size_pair(self.crop, "crop"))

    def __call__(self, batch: Tensor) -> Tensor:
        """A uint8 batch (B, C, H, W) -> the normalised float batch the model takes, on the batch's device."""
        if self.clahe is not None:
            batch = self.clahe(batch)
        mean = torch.tensor(self.mean, dtype=torch.float32, device=batch.device)
        std = torch.tensor(self.std, dtype=torch.float32, device=batch.device)
        return preprocess(batch, mean, std, self.resize, self.crop)
