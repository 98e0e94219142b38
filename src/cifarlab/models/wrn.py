"""Wide ResNets WRN-16-8 and WRN-28-10 for 32x32 images.

Zagoruyko, Komodakis, "Wide Residual Networks", BMVC 2016 (arXiv:1605.07146).

WRN-d-k has (d - 4) / 6 pre-activation blocks in each of three stages of 16k, 32k and 64k
channels (strides 1, 2, 2) after a 3x3 stride-1 stem conv with 16 channels. Layout of the
widely used PyTorch implementation: every conv carries a bias; a block is BN-ReLU-conv3x3,
optional dropout, BN-ReLU-conv3x3 (which carries the stride), and a 1x1 conv shortcut on the
raw input where the shape changes; a final BN-ReLU, global average pool and linear layer.
Parameters for 10 classes: WRN-28-10 36,489,290, WRN-16-8 10,965,866.

`block_dropout` is the paper's dropout between the two convs of a block (0.3 in its CIFAR
runs); `dropout` acts before the classifier. Both default to 0. `activation` (relu, leaky_relu,
elu, gelu, silu) replaces every ReLU.
"""

from __future__ import annotations

from torch import Tensor, nn

from cifarlab.errors import CifarlabError
from cifarlab.models.layers import (
    CifarModel,
    ClassifierHead,
    conv1x1,
    conv3x3,
    dropout_layer,
    make_activation,
    residual_stages,
)
from cifarlab.models.registry import register_variant


class WideBlock(nn.Module):
    """BN-act-conv3x3, dropout, BN-act-conv3x3 (stride), plus the raw input or its 1x1 projection."""

    def __init__(self, in_channels: int, channels: int, stride: int, block_dropout: float, activation: str = "relu"):
        super().__init__()
        self.out_channels = channels
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, channels, bias=True)
        self.dropout = dropout_layer(block_dropout, "block_dropout")
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride, bias=True)
        needs_projection = stride != 1 or in_channels != channels
        self.shortcut = conv1x1(in_channels, channels, stride, bias=True) if needs_projection else nn.Identity()
        self.relu = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.dropout(self.conv1(self.relu(self.bn1(x))))
        out = self.conv2(self.relu(self.bn2(out)))
        return out + self.shortcut(x)


class WideResNet(CifarModel):
    """WRN-depth-widen with the CIFAR stem."""

    def __init__(
        self, depth: int, widen: int, num_classes: int = 10, dropout: float = 0.0, block_dropout: float = 0.0,
        activation: str = "relu",
    ):
        super().__init__()
        if (depth - 4) % 6 != 0 or depth < 10:
            raise CifarlabError(f"WRN depth must be 6n + 4 (10, 16, 22, 28, ...), got {depth}.")
        per_stage = (depth - 4) // 6
        self.stem = conv3x3(3, 16, bias=True)
        self.stages, in_channels = residual_stages(
            lambda cin, width, stride: WideBlock(cin, width, stride, block_dropout, activation),
            16, (16 * widen, 32 * widen, 64 * widen), (1, 2, 2), (per_stage,) * 3,
        )
        self.final = nn.Sequential(nn.BatchNorm2d(in_channels), make_activation(activation, inplace=True))
        self.head = ClassifierHead(in_channels, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.final(self.stages(self.stem(x))))


register_variant("wrn_16_8", WideResNet, "WRN-16-8: two blocks per stage, widths 128/256/512.", depth=16, widen=8)
register_variant("wrn_28_10", WideResNet, "WRN-28-10: four blocks per stage, widths 160/320/640.", depth=28, widen=10)
