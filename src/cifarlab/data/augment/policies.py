"""RandAugment (Cubuk et al. 2020) and TrivialAugment-Wide (Mueller & Hutter 2021), per image, batched.

Every image draws its own ops (and, for TrivialAugment, its own magnitude); the batch is then
grouped by op so each op runs once on all the images that drew it. Magnitude ranges and the
op list follow torchvision's `RandAugment` and `TrivialAugmentWide`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from cifarlab.data.augment import colour, geometry
from cifarlab.data.augment.geometry import random_sign

NUM_BINS = 31  # magnitude bins 0..30, as torchvision

# name -> (apply(x, value), value at full magnitude for RandAugment, for TrivialAugment-Wide, signed)
PolicyOp = tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], float, float, bool]


def _factor(fn: Callable) -> Callable:
    return lambda x, value: fn(x, 1.0 + value)


POLICY_OPS: dict[str, PolicyOp] = {
    "identity": (lambda x, value: x, 0.0, 0.0, False),
    "shear_x": (lambda x, value: geometry.shear(x, value, 0), 0.3, 0.99, True),
    "shear_y": (lambda x, value: geometry.shear(x, value, 1), 0.3, 0.99, True),
    # Translation in shares of the image side: torchvision uses 150/331 of it, and 32 px wide.
    "translate_x": (lambda x, value: geometry.translate(x, value * x.shape[-1], 0), 150 / 331, 1.0, True),
    "translate_y": (lambda x, value: geometry.translate(x, value * x.shape[-2], 1), 150 / 331, 1.0, True),
    "rotate": (lambda x, value: geometry.rotate(x, value), 30.0, 135.0, True),
    "brightness": (_factor(colour.brightness), 0.9, 0.99, True),
    "color": (_factor(colour.saturation), 0.9, 0.99, True),
    "contrast": (_factor(colour.contrast), 0.9, 0.99, True),
    "sharpness": (_factor(colour.sharpness), 0.9, 0.99, True),
    # Posterize: bits removed at full magnitude (8 - bits kept); solarize: threshold drop from 1.
    "posterize": (lambda x, value: colour.posterize(x, 8 - value.round()), 4.0, 6.0, False),
    "solarize": (lambda x, value: colour.solarize(x, 1.0 - value), 1.0, 1.0, False),
    "autocontrast": (lambda x, value: colour.autocontrast(x), 0.0, 0.0, False),
    "equalize": (lambda x, value: colour.equalize(x), 0.0, 0.0, False),
}
OP_ORDER = list(POLICY_OPS)

# The geometric ops as (matrix, shift) makers: images that drew any of them share one warp, which
# measured 24.8 ms against 29.4 ms (one warp per op) for RandAugment on 128 CIFAR images, one CPU thread.
AFFINE: dict[str, Callable[[torch.Tensor, int, int], tuple[torch.Tensor, torch.Tensor]]] = {
    "shear_x": lambda value, h, w: geometry.shearing(value, 0),
    "shear_y": lambda value, h, w: geometry.shearing(value, 1),
    "translate_x": lambda value, h, w: geometry.translation(value * w, 0),
    "translate_y": lambda value, h, w: geometry.translation(value * h, 1),
    "rotate": lambda value, h, w: (geometry.rotation(value), torch.zeros(len(value), 2)),
}


def apply_grouped(x: torch.Tensor, choice: torch.Tensor, values: torch.Tensor, names: list[str],
                  active: torch.Tensor | None = None, interpolation: str = "nearest") -> torch.Tensor:
    """Image i gets op `names[choice[i]]` with value `values[i]` (where `active[i]`); one call per op.

    All geometric ops share one warp. `interpolation` of the geometric ops: nearest is torchvision's
    default for RandAugment and TrivialAugment (6x faster than bilinear here); AugMix's code uses
    bilinear. (Sorting the batch by op to work on contiguous slices measured no faster than this.)
    """
    out = x.clone()
    active = torch.ones(len(choice), dtype=torch.bool) if active is None else active
    geometric = torch.zeros(len(choice), dtype=torch.bool)
    for k, name in enumerate(names):
        picked = (choice == k) & active
        if name in AFFINE:
            geometric |= picked
        elif name != "identity" and picked.any():
            rows = picked.to(x.device)
            out[rows] = POLICY_OPS[name][0](x[rows], values[picked])
    if geometric.any():
        rows = geometric.to(x.device)
        out[rows] = _warp_group(x[rows], choice[geometric], values[geometric], names, interpolation)
    return out


def _warp_group(x: torch.Tensor, choice: torch.Tensor, values: torch.Tensor, names: list[str],
                interpolation: str) -> torch.Tensor:
    """One warp for images that each drew one of the geometric ops, each with its own matrix."""
    matrix, shift = torch.zeros(len(x), 2, 2), torch.zeros(len(x), 2)
    for k, name in enumerate(names):
        picked = choice == k
        if name in AFFINE and picked.any():
            matrix[picked], shift[picked] = AFFINE[name](values[picked], x.shape[-2], x.shape[-1])
    return geometry.warp(x, matrix, shift, mode=interpolation)


def _values(choice: torch.Tensor, magnitude: torch.Tensor, wide: bool, g: torch.Generator) -> torch.Tensor:
    """Each image's op value: its bin's share of the op's full value, with a random sign where signed."""
    full = torch.tensor([POLICY_OPS[name][2 if wide else 1] for name in OP_ORDER])[choice]
    signed = torch.tensor([POLICY_OPS[name][3] for name in OP_ORDER])[choice]
    sign = torch.where(signed, random_sign(len(choice), g), torch.ones(len(choice)))
    return full * magnitude / (NUM_BINS - 1) * sign


def rand_augment(x: torch.Tensor, num_ops: int, magnitude: int, g: torch.Generator) -> torch.Tensor:
    """`num_ops` ops in a row per image, each drawn uniformly, all at magnitude bin `magnitude`."""
    for _ in range(num_ops):
        choice = torch.randint(len(OP_ORDER), (len(x),), generator=g)
        values = _values(choice, torch.full((len(x),), float(magnitude)), False, g)
        x = apply_grouped(x, choice, values, OP_ORDER)
    return x


def trivial_augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """One op per image, drawn uniformly, at a magnitude bin drawn uniformly (the wide ranges)."""
    choice = torch.randint(len(OP_ORDER), (len(x),), generator=g)
    magnitude = torch.randint(NUM_BINS, (len(x),), generator=g).float()
    return apply_grouped(x, choice, _values(choice, magnitude, True, g), OP_ORDER)
