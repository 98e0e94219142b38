"""PNASNet-A and PNASNet-B: small cell-based nets for 32x32 images.

Liu et al., "Progressive Neural Architecture Search", ECCV 2018 (arXiv:1712.00559).

Layout of kuangliu/pytorch-cifar: a 3x3 stride-1 stem conv to F channels (44 for A, 32 for B) with
BN and ReLU; six cells at F channels, a reduction cell (stride 2, 2F), six cells at 2F, a reduction
cell (4F) and six cells at 4F, so 32x32 ends at 8x8; global average pool and one linear layer.
The reference's "separable" kxk conv is a single grouped conv (one group per input channel, so
each group maps one input channel to out/in output channels) followed by BN, not a depthwise conv
followed by a pointwise one; it is kept so the parameter counts agree. A reduction cell puts a 1x1
conv + BN after its max-pool to reach the new width.
- Cell A: ReLU(sep7x7(x) + maxpool3x3(x)). 130,646 parameters for 10 classes.
- Cell B: ReLU(sep7x7(x) + sep3x3(x)) and ReLU(maxpool3x3(x) + sep5x5(x)), concatenated, then
  1x1 conv -> BN -> ReLU back to the cell's width. 451,626 parameters for 10 classes.
`activation` (relu, leaky_relu, elu, gelu, silu) replaces every ReLU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cifarlab.models.layers import CifarModel, ClassifierHead, conv1x1, conv_bn_act, make_activation
from cifarlab.models.registry import register_variant

CELLS_PER_STAGE = 6


def grouped_conv_bn(in_channels: int, out_channels: int, kernel_size: int, stride: int) -> nn.Sequential:
    """The reference's "separable" conv: kxk conv in `in_channels` groups (size kept at stride 1) -> BN."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding=kernel_size // 2, groups=in_channels,
                  bias=False),
        nn.BatchNorm2d(out_channels),
    )


def pool_branch(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """3x3 max-pool; at stride 2 a 1x1 conv + BN follows it to reach the reduction cell's width."""
    pool = nn.MaxPool2d(3, stride=stride, padding=1)
    if stride == 1:
        return nn.Sequential(pool)
    return nn.Sequential(pool, conv1x1(in_channels, out_channels), nn.BatchNorm2d(out_channels))


class CellA(nn.Module):
    """act(sep7x7(x) + maxpool(x)); a normal cell needs as many input as output channels."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, activation: str = "relu"):
        super().__init__()
        self.sep7x7 = grouped_conv_bn(in_channels, out_channels, 7, stride)
        self.pool = pool_branch(in_channels, out_channels, stride)
        self.act = make_activation(activation, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.sep7x7(x) + self.pool(x))


class CellB(nn.Module):
    """Two summed pairs of branches, concatenated and mixed back to `out_channels` by 1x1 conv-BN-act."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, activation: str = "relu"):
        super().__init__()
        self.sep7x7 = grouped_conv_bn(in_channels, out_channels, 7, stride)
        self.sep3x3 = grouped_conv_bn(in_channels, out_channels, 3, stride)
        self.sep5x5 = grouped_conv_bn(in_channels, out_channels, 5, stride)
        self.pool = pool_branch(in_channels, out_channels, stride)
        self.act = make_activation(activation, inplace=True)
        self.mix = conv_bn_act(2 * out_channels, out_channels, kernel_size=1, activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        left = self.act(self.sep7x7(x) + self.sep3x3(x))
        right = self.act(self.pool(x) + self.sep5x5(x))
        return self.mix(torch.cat([left, right], 1))


class PNASNet(CifarModel):
    """Three stages of six `cell`s at F, 2F and 4F channels, joined by stride-2 reduction cells."""

    def __init__(
        self, cell: type[nn.Module], base_channels: int, num_classes: int = 10, dropout: float = 0.0,
        activation: str = "relu",
    ):
        super().__init__()
        self.stem = conv_bn_act(3, base_channels, activation=activation)
        layers, channels = [], base_channels
        for stage in range(3):
            width = base_channels * 2**stage
            if stage > 0:
                layers.append(cell(channels, width, stride=2, activation=activation))
            layers += [cell(width, width, activation=activation) for _ in range(CELLS_PER_STAGE)]
            channels = width
        self.cells = nn.Sequential(*layers)
        self.head = ClassifierHead(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.cells(self.stem(x)))


register_variant("pnasnet_a", PNASNet, "PNASNet-A: cell A, 44 base channels.", cell=CellA, base_channels=44)
register_variant("pnasnet_b", PNASNet, "PNASNet-B: cell B, 32 base channels.", cell=CellB, base_channels=32)
