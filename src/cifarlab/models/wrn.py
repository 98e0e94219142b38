"""Wide ResNets WRN-16-8 and WRN-28-10 for 32x32 images.

Zagoruyko, Komodakis, "Wide Residual Networks", BMVC 2016 (arXiv:1605.07146).

WRN-d-k has (d - 4) / 6 pre-activation blocks in each of three stages of 16k, 32k and 64k
channels (strides 1, 2, 2) after a 3x3 stride-1 stem conv with 16 channels. Layout of the
widely used PyTorch implementation: every conv carries a bias; a block is BN-ReLU-conv3x3,
optional dropout, BN-ReLU-conv3x3 (which carries the stride), and a 1x1 conv shortcut on the
raw input where the shape changes; a final BN-ReLU, global average pool and linear layer.
Parameters for 10 classes: WRN-28-10 36,489,290, WRN-16-8 10,965,866.

`block_dropout` is the paper's dropout between the two convs of a block (0.3 in its CIFAR
runs); `dropout` acts before the classifier. Both default to 0.
"""

from __future__ import annotations

from torch import Tensor, nn

from cifarlab.errors import CifarlabError
from cifarlab.models.layers import CifarModel, ClassifierHead, conv1x1, conv3x3, dropout_layer
from cifarlab.models.registry import register_model


class WideBlock(nn.Module):
    """BN-ReLU-conv3x3, dropout, BN-ReLU-conv3x3 (stride), plus the raw input or its 1x1 projection."""

    def __init__(self, in_channels: int, channels: int, stride: int, block_dropout: float):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, channels, bias=True)
        self.dropout = dropout_layer(block_dropout, "block_dropout")
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride, bias=True)
        needs_projection = stride != 1 or in_channels != channels
        self.shortcut = conv1x1(in_channels, channels, stride, bias=True) if needs_projection else nn.Identity()
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.dropout(self.conv1(self.relu(self.bn1(x))))
        out = self.conv2(self.relu(self.bn2(out)))
        return out + self.shortcut(x)


class WideResNet(CifarModel):
    """WRN-depth-widen with the CIFAR stem."""

    def __init__(self, depth: int, widen: int, num_classes: int = 10, dropout: float = 0.0, block_dropout: float = 0.0):
        super().__init__()
        if (depth - 4) % 6 != 0 or depth < 10:
            raise CifarlabError(f"WRN depth must be 6n + 4 (10, 16, 22, 28, ...), got {depth}.")
        per_stage = (depth - 4) // 6
        self.stem = conv3x3(3, 16, bias=True)
        stages, in_channels = [], 16
        for width, stride in zip((16 * widen, 32 * widen, 64 * widen), (1, 2, 2)):
            blocks = []
            for index in range(per_stage):
                blocks.append(WideBlock(in_channels, width, stride if index == 0 else 1, block_dropout))
                in_channels = width
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.Sequential(*stages)
        self.final = nn.Sequential(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True))
        self.head = ClassifierHead(in_channels, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.final(self.stages(self.stem(x))))


@register_model
def wrn_16_8(num_classes: int = 10, dropout: float = 0.0, block_dropout: float = 0.0) -> WideResNet:
    """WRN-16-8: two blocks per stage, widths 128/256/512."""
    return WideResNet(16, 8, num_classes, dropout, block_dropout)


@register_model
def wrn_28_10(num_classes: int = 10, dropout: float = 0.0, block_dropout: float = 0.0) -> WideResNet:
    """WRN-28-10: four blocks per stage, widths 160/320/640."""
    return WideResNet(28, 10, num_classes, dropout, block_dropout)
