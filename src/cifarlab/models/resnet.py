"""ResNet-18/34/50/101/152 for 32x32 images.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv:1512.03385).

CIFAR layout of the common pytorch-cifar reference: a 3x3 stride-1 stem conv with 64 channels,
BN and ReLU and no max-pool; four stages of 64/128/256/512 channels (strides 1, 2, 2, 2), post-
activation basic blocks (18, 34) or bottlenecks with expansion 4 (50, 101, 152), 1x1 conv + BN
projection shortcuts where the shape changes; global average pool and one linear layer.
Parameters for 10 classes: ResNet-18 11,173,962, ResNet-34 21,282,122, ResNet-50 23,520,842,
ResNet-101 42,512,970, ResNet-152 58,156,618.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from cifarlab.models.layers import BasicBlock, CifarModel, ClassifierHead, conv1x1, conv3x3, projection
from cifarlab.models.registry import register_model

STAGE_WIDTHS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (carries the stride) -> 1x1 expand by 4, each with BN; ReLU after the add."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        out_channels = channels * self.expansion
        self.conv1 = conv1x1(in_channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = projection(in_channels, out_channels, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


def make_stages(block: type[nn.Module], in_channels: int, blocks_per_stage: Sequence[int]) -> tuple[nn.Sequential, int]:
    """The four residual stages; returns them and the channel count they end with."""
    stages = []
    for width, stride, count in zip(STAGE_WIDTHS, STAGE_STRIDES, blocks_per_stage):
        layers = []
        for index in range(count):
            layers.append(block(in_channels, width, stride if index == 0 else 1))
            in_channels = width * block.expansion
        stages.append(nn.Sequential(*layers))
    return nn.Sequential(*stages), in_channels


class ResNet(CifarModel):
    """ResNet with the CIFAR stem (3x3, stride 1, no max-pool)."""

    def __init__(
        self, block: type[nn.Module], blocks_per_stage: Sequence[int], num_classes: int = 10, dropout: float = 0.0
    ):
        super().__init__()
        self.stem = nn.Sequential(conv3x3(3, 64), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.stages, width = make_stages(block, 64, blocks_per_stage)
        self.head = ClassifierHead(width, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))


@register_model
def resnet18(num_classes: int = 10, dropout: float = 0.0) -> ResNet:
    """ResNet-18: basic blocks [2, 2, 2, 2]."""
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes, dropout)


@register_model
def resnet34(num_classes: int = 10, dropout: float = 0.0) -> ResNet:
    """ResNet-34: basic blocks [3, 4, 6, 3]."""
    return ResNet(BasicBlock, (3, 4, 6, 3), num_classes, dropout)


@register_model
def resnet50(num_classes: int = 10, dropout: float = 0.0) -> ResNet:
    """ResNet-50: bottlenecks [3, 4, 6, 3]."""
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes, dropout)


@register_model
def resnet101(num_classes: int = 10, dropout: float = 0.0) -> ResNet:
    """ResNet-101: bottlenecks [3, 4, 23, 3]."""
    return ResNet(Bottleneck, (3, 4, 23, 3), num_classes, dropout)


@register_model
def resnet152(num_classes: int = 10, dropout: float = 0.0) -> ResNet:
    """ResNet-152: bottlenecks [3, 8, 36, 3]."""
    return ResNet(Bottleneck, (3, 8, 36, 3), num_classes, dropout)
