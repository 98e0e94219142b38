"""Dual Path Networks DPN-26 and DPN-92 for 32x32 images.

Chen, Li, Xiao, Jin, Yan, Feng, "Dual Path Networks", NeurIPS 2017 (arXiv:1707.01629).

Layout of the common pytorch-cifar reference: a 3x3 stride-1 stem conv to 64 channels with BN
and ReLU, no max-pool; four stages (strides 1, 2, 2, 2) of blocks 1x1 -> grouped 3x3 (32 groups,
carries the stride) -> 1x1, each with BN. A block's output splits into a residual path of
`out_channels` added to the input's first channels and a dense path of `dense_depth` channels
concatenated after them, so each block widens the dense part. The first block of a stage
projects its input (1x1 conv + BN). Global average pool, linear layer. `activation` (relu,
leaky_relu, elu, gelu, silu) replaces every ReLU. Parameters for 10 classes:
DPN-26 11,574,842, DPN-92 34,236,634.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cifarlab.models.layers import Bottleneck, StemStagesHead, conv1x1, conv3x3, make_activation
from cifarlab.models.registry import register_variant

GROUPS = 32
BOTTLENECK_WIDTHS = (96, 192, 384, 768)
RESIDUAL_WIDTHS = (256, 512, 1024, 2048)
DENSE_DEPTHS = (16, 32, 24, 128)


class DualPathBlock(Bottleneck):
    """Grouped bottleneck whose output is split into a residual sum and a dense concatenation.

    The layers are a 32-group Bottleneck's, widened by `dense_depth` output channels; only the first
    block of a stage has a projection shortcut (the others add the input as it is).
    """

    def __init__(
        self, in_channels: int, width: int, out_channels: int, dense_depth: int, stride: int, first: bool,
        activation: str = "relu",
    ):
        total = out_channels + dense_depth

        def shortcut() -> nn.Module:
            return nn.Sequential(conv1x1(in_channels, total, stride), nn.BatchNorm2d(total)) if first else nn.Identity()

        super().__init__(in_channels, width, total, stride, groups=GROUPS, activation=activation, shortcut=shortcut)
        self.out_channels = out_channels  # the residual part; the rest of the channels are the dense path
        self.relu = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        x = self.shortcut(x)
        d = self.out_channels
        out = torch.cat([x[:, :d] + out[:, :d], x[:, d:], out[:, d:]], 1)
        return self.relu(out)


class DPN(StemStagesHead):
    """Dual Path Network with `blocks_per_stage` blocks."""

    def __init__(
        self, blocks_per_stage: Sequence[int], num_classes: int = 10, dropout: float = 0.0, activation: str = "relu"
    ):
        stem = nn.Sequential(conv3x3(3, 64), nn.BatchNorm2d(64), make_activation(activation, inplace=True))
        stages, in_channels = [], 64
        settings = zip(BOTTLENECK_WIDTHS, RESIDUAL_WIDTHS, blocks_per_stage, DENSE_DEPTHS, (1, 2, 2, 2))
        for width, out_channels, count, dense_depth, stride in settings:
            blocks = []
            for index in range(count):
                first = index == 0
                blocks.append(DualPathBlock(
                    in_channels, width, out_channels, dense_depth, stride if first else 1, first, activation
                ))
                # The dense path holds one slice from the projection plus one per block so far.
                in_channels = out_channels + (index + 2) * dense_depth
            stages.append(nn.Sequential(*blocks))
        super().__init__(stem, nn.Sequential(*stages), in_channels, num_classes, dropout)


register_variant("dpn26", DPN, "DPN-26: blocks [2, 2, 2, 2].", blocks_per_stage=(2, 2, 2, 2))
register_variant("dpn92", DPN, "DPN-92: blocks [3, 4, 20, 3].", blocks_per_stage=(3, 4, 20, 3))
