"""Test-time augmentation: run a model on several views of a batch and average the softmax.

Every mode is a list of (weight, view) pairs whose weights sum to one; the prediction is
`sum(weight * softmax(model(view)))`. Softmax is averaged, not logits, so every view votes
with a proper distribution and the result is itself a probability vector.

Modes (the batch is already normalised, shape (B, C, H, W)):

- `none`: the batch itself, weight 1.
- `flip`: the batch and its horizontal mirror, 1/2 each.
- `flip_translate`: the weighting of airbench's `tta_level=2`. Half of the weight goes to the
  flip pair of the untranslated batch (1/4 each); the other half is shared by two translated
  batches and their mirrors (1/8 each). The translated batches come from padding by one pixel
  with reflect padding and cropping back to H x W at offset (0, 0), so the content moves one
  pixel down and right (`view[i, j] = x[i-1, j-1]`), and at offset (2, 2), so it moves one pixel
  up and left (`view[i, j] = x[i+1, j+1]`). The mirror is taken after the translation.
  Six views in all.
- `shift16`: DL4DS's sixteen shifts, the "Moore neighbourhood" at distances 1 and 2: every
  (dy, dx) = (d*sy, d*sx) for d in (1, 2) and (sy, sx) in {-1, 0, 1}^2 without (0, 0), applied
  with `torch.roll` (circular: pixels pushed off one edge come back on the other, as in the
  shift transforms DL4DS took from Docherty et al. 2024), so `view[i, j] = x[i-dy, j-dx]`
  modulo the image size. The unshifted image is not among the sixteen; each view weighs 1/16.
  The exact list is `SHIFT16`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cifarlab.errors import CifarlabError

TTA_MODES = ("none", "flip", "flip_translate", "shift16")

# (dy, dx) in the order DL4DS enumerates them: distance 1 first, neighbours row by row.
_MOORE = tuple((sy, sx) for sy in (-1, 0, 1) for sx in (-1, 0, 1) if (sy, sx) != (0, 0))
SHIFT16: tuple[tuple[int, int], ...] = tuple((d * sy, d * sx) for d in (1, 2) for sy, sx in _MOORE)


def check_tta_mode(mode: str) -> str:
    """Return `mode` if it names a TTA mode, else raise a CifarlabError listing the choices."""
    if mode not in TTA_MODES:
        raise CifarlabError(f"unknown test-time augmentation {mode!r}; use one of: {', '.join(TTA_MODES)}")
    return mode


def mirror(x: Tensor) -> Tensor:
    """Horizontal (left-right) mirror of a batch."""
    return x.flip(-1)


def translate_reflect(x: Tensor, dy: int, dx: int) -> Tensor:
    """Move the content by (dy, dx) pixels, |dy|, |dx| <= 1, filling the gap by reflection."""
    h, w = x.shape[-2:]
    padded = F.pad(x, (1, 1, 1, 1), mode="reflect")
    top, left = 1 - dy, 1 - dx
    return padded[..., top : top + h, left : left + w]


def tta_views(x: Tensor, mode: str) -> Iterator[tuple[float, Tensor]]:
    """Yield the (weight, view) pairs of one TTA mode, one view at a time to bound memory."""
    check_tta_mode(mode)
    if mode == "none":
        yield 1.0, x
    elif mode == "flip":
        yield 0.5, x
        yield 0.5, mirror(x)
    elif mode == "flip_translate":
        if min(x.shape[-2:]) < 2:
            raise CifarlabError("flip_translate needs images of at least 2x2 pixels; use tta='flip' instead")
        yield 0.25, x
        yield 0.25, mirror(x)
        for dy, dx in ((1, 1), (-1, -1)):
            moved = translate_reflect(x, dy, dx)
            yield 0.125, moved
            yield 0.125, mirror(moved)
    else:
        for dy, dx in SHIFT16:
            yield 1.0 / len(SHIFT16), torch.roll(x, shifts=(dy, dx), dims=(-2, -1))


def tta_softmax(x: Tensor, model: nn.Module | Callable[[Tensor], Tensor], mode: str = "none") -> Tensor:
    """Weighted mean of the softmax of `model` over the views of normalised batch `x` (float32)."""
    total = None
    for weight, view in tta_views(x, mode):
        probs = model(view).float().softmax(dim=1) * weight
        total = probs if total is None else total + probs
    return total
