"""ResNeXt-29 and ResNeXt-50 (cardinality x bottleneck width) for 32x32 images.

Xie, Girshick, Dollar, Tu, He, "Aggregated Residual Transformations for Deep Neural Networks",
CVPR 2017 (arXiv:1611.05431).

Layout of the common pytorch-cifar reference: a stride-1 stem of a 1x1 conv to 64 channels, BN
and ReLU, no max-pool (the reference's stem is 1x1, not 3x3; it is kept so the parameter counts
agree). A block is 1x1 conv to C*d channels, grouped 3x3 conv (C groups, carries the stride),
1x1 conv to 2*C*d, each with BN, then the shortcut (identity or 1x1 conv + BN) and ReLU; the
bottleneck width d doubles at every stage. ResNeXt-29 has three stages of 3 blocks (strides
1, 2, 2); ResNeXt-50 uses the same block in four stages of 3, 4, 6, 3 blocks (strides 1, 2, 2, 2),
the complexity-matched 2x40d / 8x14d / 32x4d settings of the paper's Table 3.
Parameters for 10 classes: 29_2x32d 2,297,418, 29_2x64d 9,128,778, 29_4x64d 27,104,586,
29_8x64d 89,598,282, 29_32x4d 4,774,218, 50_2x40d 17,296,650, 50_8x14d 20,864,362,
50_32x4d 22,991,178.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from cifarlab.models.layers import CifarModel, ClassifierHead, conv1x1, conv3x3, projection
from cifarlab.models.registry import register_model


class GroupedBottleneck(nn.Module):
    """1x1 -> grouped 3x3 -> 1x1 expanding by 2, each with BN; ReLU after adding the shortcut."""

    expansion = 2

    def __init__(self, in_channels: int, cardinality: int, bottleneck_width: int, stride: int = 1):
        super().__init__()
        group_width = cardinality * bottleneck_width
        out_channels = self.expansion * group_width
        self.conv1 = conv1x1(in_channels, group_width)
        self.bn1 = nn.BatchNorm2d(group_width)
        self.conv2 = conv3x3(group_width, group_width, stride, groups=cardinality)
        self.bn2 = nn.BatchNorm2d(group_width)
        self.conv3 = conv1x1(group_width, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.shortcut = projection(in_channels, out_channels, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class ResNeXt(CifarModel):
    """ResNeXt with `blocks_per_stage` blocks; the first stage has stride 1, the others 2."""

    def __init__(
        self,
        blocks_per_stage: Sequence[int],
        cardinality: int,
        bottleneck_width: int,
        num_classes: int = 10,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.stem = nn.Sequential(conv1x1(3, 64), nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        stages, in_channels, width = [], 64, bottleneck_width
        for stage, count in enumerate(blocks_per_stage):
            blocks = []
            for index in range(count):
                stride = 2 if stage > 0 and index == 0 else 1
                blocks.append(GroupedBottleneck(in_channels, cardinality, width, stride))
                in_channels = GroupedBottleneck.expansion * cardinality * width
            stages.append(nn.Sequential(*blocks))
            width *= 2
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(in_channels, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))


RESNEXT29 = (3, 3, 3)
RESNEXT50 = (3, 4, 6, 3)


@register_model
def resnext29_2x32d(num_classes: int = 10, dropout: float = 0.0) -> ResNeXt:
    """ResNeXt-29, cardinality 2, width 32."""
    return ResNeXt(RESNEXT29, 2, 32, num_classes, dropout)


@register_model
def resnext29_2x64d(num_classes: int = 10, dropout: float = 0.0) -> ResNeXt:
    """ResNeXt-29, cardinality 2, width 64."""
    return ResNeXt(RESNEXT29, 2, 64, num_classes, dropout)


@register_model
def resnext29_4x64d(num_classes: int = 10, dropout: float = 0.0) -> ResNeXt:
    """ResNeXt-29, cardinality 4, width 64."""
    return ResNeXt(RESNEXT29, 4, 64, num_classes, dropout)


@register_model
def resnext29_8x64d(num_classes: int = 10, dropout: float = 0.0) -> ResNeXt:
    """ResNeXt-29, cardinality 8, width 64 (the largest of the zoo, about 14 GMACs per image)."""
    return ResNeXt(RESNEXT29, 8, 64, num_classes, dropout)


@register_model
def resnext29_32x4d(num_classes: int = 10, dropout: float = 0.0) -> ResNeXt:
    """ResNeXt-29, cardinality 32, width 4."""
    return ResNeXt(RESNEXT29, 32, 4, num_classes, dropout)


@register_model
def resnext50_2x40d(num_classes: int = 10, dropout: float = 0.0) -> ResNeXt:
    """ResNeXt-50, cardinality 2, width 40."""
    return ResNeXt(RESNEXT50, 2, 40, num_classes, dropout)


@register_model
def resnext50_8x14d(num_classes: int = 10, dropout: float = 0.0) -> ResNeXt:
    """ResNeXt-50, cardinality 8, width 14."""
    return ResNeXt(RESNEXT50, 8, 14, num_classes, dropout)


@register_model
def resnext50_32x4d(num_classes: int = 10, dropout: float = 0.0) -> ResNeXt:
    """ResNeXt-50, cardinality 32, width 4."""
    return ResNeXt(RESNEXT50, 32, 4, num_classes, dropout)
