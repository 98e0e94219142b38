"""Pre-activation ResNet-18/34/50/101/152 for 32x32 images.

He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks", ECCV 2016 (arXiv:1603.05027).

Layout of the common pytorch-cifar reference: a bare 3x3 stride-1 stem conv (64 channels, no BN,
no max-pool); blocks run BN -> ReLU -> conv, and a projection shortcut (a plain 1x1 conv) reads
the pre-activated input; stages of 64/128/256/512 channels, strides 1, 2, 2, 2. As in that
reference there is no final BN-ReLU before the pool, which keeps its parameter counts:
for 10 classes 11,171,146 (18), 21,279,306 (34), 23,509,066 (50), 42,501,194 (101) and
58,144,842 (152).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from cifarlab.models.layers import CifarModel, ClassifierHead, conv1x1, conv3x3
from cifarlab.models.registry import register_model
from cifarlab.models.resnet import make_stages


def preact_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """1x1 conv projection where the shape changes; None means the raw input is added."""
    if stride == 1 and in_channels == out_channels:
        return None
    return conv1x1(in_channels, out_channels, stride)


class PreActBlock(nn.Module):
    """BN-ReLU-conv3x3, BN-ReLU-conv3x3, plus the shortcut."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.shortcut = preact_shortcut(in_channels, channels, stride)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        return out + shortcut


class PreActBottleneck(nn.Module):
    """BN-ReLU-conv1x1, BN-ReLU-conv3x3 (stride), BN-ReLU-conv1x1 expanding by 4, plus the shortcut."""

    expansion = 4

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        out_channels = channels * self.expansion
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv1x1(in_channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn3 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, out_channels)
        self.shortcut = preact_shortcut(in_channels, out_channels, stride)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        return out + shortcut


class PreActResNet(CifarModel):
    """Pre-activation ResNet with the CIFAR stem."""

    def __init__(
        self, block: type[nn.Module], blocks_per_stage: Sequence[int], num_classes: int = 10, dropout: float = 0.0
    ):
        super().__init__()
        self.stem = conv3x3(3, 64)
        self.stages, width = make_stages(block, 64, blocks_per_stage)
        self.head = ClassifierHead(width, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))


@register_model
def preact_resnet18(num_classes: int = 10, dropout: float = 0.0) -> PreActResNet:
    """PreAct-ResNet-18: blocks [2, 2, 2, 2]."""
    return PreActResNet(PreActBlock, (2, 2, 2, 2), num_classes, dropout)


@register_model
def preact_resnet34(num_classes: int = 10, dropout: float = 0.0) -> PreActResNet:
    """PreAct-ResNet-34: blocks [3, 4, 6, 3]."""
    return PreActResNet(PreActBlock, (3, 4, 6, 3), num_classes, dropout)


@register_model
def preact_resnet50(num_classes: int = 10, dropout: float = 0.0) -> PreActResNet:
    """PreAct-ResNet-50: bottlenecks [3, 4, 6, 3]."""
    return PreActResNet(PreActBottleneck, (3, 4, 6, 3), num_classes, dropout)


@register_model
def preact_resnet101(num_classes: int = 10, dropout: float = 0.0) -> PreActResNet:
    """PreAct-ResNet-101: bottlenecks [3, 4, 23, 3]."""
    return PreActResNet(PreActBottleneck, (3, 4, 23, 3), num_classes, dropout)


@register_model
def preact_resnet152(num_classes: int = 10, dropout: float = 0.0) -> PreActResNet:
    """PreAct-ResNet-152: bottlenecks [3, 8, 36, 3]."""
    return PreActResNet(PreActBottleneck, (3, 8, 36, 3), num_classes, dropout)
