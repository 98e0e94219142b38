"""The airbench family: a small GELU conv net behind a frozen 2x2 patch-whitening layer.

Layout of airbench94 (94% CIFAR-10 in about ten epochs): a 2x2 whitening conv with
2 * 3 * 2 * 2 = 24 outputs (eigenvector filters and their negatives), GELU, three groups
of conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU with widths 64, 256, 256,
a 3x3 max-pool, a bias-free linear head and a fixed 1/9 output scale. BatchNorm scales are
fixed at one (only the shifts learn), eps 1e-12, running-stat momentum 0.4.

The data-dependent parts of its initialisation (patch whitening, identity convs) live in
`cifarlab.models.whitening`, because they need training images.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.models.registry import register_model

AIRBENCH94_WIDTHS = (64, 256, 256)
WHITEN_KERNEL = 2


class FrozenScaleBatchNorm(nn.BatchNorm2d):
    """BatchNorm whose scale stays at one; only the shift (bias) is trained."""

    def __init__(self, num_features: int, momentum: float = 0.4, eps: float = 1e-12):
        super().__init__(num_features, eps=eps, momentum=momentum)
        # A learned scale is redundant before a conv whose weights can absorb it.
        self.weight.requires_grad_(False)


class ConvGroup(nn.Module):
    """conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU; halves the resolution.

    `depth=3` is airbench96's group (KellerJordan/cifar10-airbench, airbench96.py): a third conv3x3 -> BN,
    and a residual from after the first GELU over the last two convs, added before the last GELU.
    """

    def __init__(self, channels_in: int, channels_out: int, bn_momentum: float, depth: int = 2):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding="same", bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = FrozenScaleBatchNorm(channels_out, bn_momentum)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding="same", bias=False)
        self.norm2 = FrozenScaleBatchNorm(channels_out, bn_momentum)
        if depth == 3:
            self.conv3 = nn.Conv2d(channels_out, channels_out, 3, padding="same", bias=False)
            self.norm3 = FrozenScaleBatchNorm(channels_out, bn_momentum)
        self.depth = depth
        self.activ = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.activ(self.norm1(self.pool(self.conv1(x))))
        if self.depth == 2:
            return self.activ(self.norm2(self.conv2(x)))
        shortcut = x
        x = self.activ(self.norm2(self.conv2(x)))
        return self.activ(self.norm3(self.conv3(x)) + shortcut)


class AirbenchNet(nn.Module):
    """The airbench94 network at any widths; `whiten` is the 2x2 layer to whiten and freeze."""

    def __init__(
        self,
        num_classes: int = 10,
        widths: Sequence[int] = AIRBENCH94_WIDTHS,
        bn_momentum: float = 0.4,
        scaling_factor: float = 1 / 9,
        depth: int = 2,
    ):
        super().__init__()
        widths = tuple(int(w) for w in widths)
        whiten_width = 2 * 3 * WHITEN_KERNEL**2
        self.widths = widths
        self.scaling_factor = scaling_factor
        self.whiten = nn.Conv2d(3, whiten_width, WHITEN_KERNEL, padding=0, bias=True)
        self.activ = nn.GELU()
        self.groups = nn.Sequential(
            ConvGroup(whiten_width, widths[0], bn_momentum, depth),
            ConvGroup(widths[0], widths[1], bn_momentum, depth),
            ConvGroup(widths[1], widths[2], bn_momentum, depth),
        )
        # 32 -> 31 (2x2 valid) -> 15 -> 7 -> 3 after the pools, where airbench's 3x3 max-pool is the
        # global max. Written as a global max-pool, so the same network also takes the smaller
        # batches of progressive resizing (24 -> 23 -> 11 -> 5 -> 2).
        self.pool = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(widths[2], num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.groups(self.activ(self.whiten(x)))
        x = self.pool(x).flatten(1)
        return self.head(x) * self.scaling_factor


def scaled_widths(widths: Sequence[int], width_multiplier: float) -> tuple[int, ...]:
    """Widths times a multiplier, rounded to a multiple of 8 (SIMD-friendly), at least 8."""
    if width_multiplier <= 0:
        raise CifarlabError(
            f"width_multiplier must be positive, got {width_multiplier}; use e.g. 0.5 for half width."
        )
    return tuple(max(8, int(round(w * width_multiplier / 8)) * 8) for w in widths)


@register_model
def airbench94(
    num_classes: int = 10,
    widths: Sequence[int] | None = None,
    width_multiplier: float = 1.0,
    bn_momentum: float = 0.4,
    depth: int = 2,
) -> AirbenchNet:
    """airbench94: widths (64, 256, 256), 1,972,792 parameters for 10 classes.

    `widths=(a, b, c)` sets the three group widths; `width_multiplier` scales them
    (applied after `widths`), e.g. 0.5 gives (32, 128, 128). `depth=3` gives each group
    airbench96's third conv and residual (airbench96 itself: widths (128, 512, 512), depth 3).
    """
    if depth not in (2, 3):
        raise CifarlabError(f"airbench94 depth must be 2 (airbench94's groups) or 3 (airbench96's), got {depth!r}")
    base = AIRBENCH94_WIDTHS if widths is None else tuple(widths)
    if len(base) != 3 or any(int(w) < 1 for w in base):
        raise CifarlabError(
            f"airbench94 widths must be three positive integers, got {widths!r}; e.g. widths=[64, 256, 256]."
        )
    if width_multiplier != 1.0:
        base = scaled_widths(base, width_multiplier)
    return AirbenchNet(num_classes=num_classes, widths=base, bn_momentum=bn_momentum, depth=depth)
