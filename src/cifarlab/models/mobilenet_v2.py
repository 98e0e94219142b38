"""MobileNetV2: inverted residuals with linear bottlenecks, for 32x32 images.

Sandler, Howard, Zhu, Zhmoginov, Chen, "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018 (arXiv:1801.04381).

Layout of kuangliu/pytorch-cifar: a 3x3 stride-1 stem conv to 32 channels with BN and ReLU, then
the paper's seventeen inverted-residual blocks (Table 2: expansion t, channels c, repeats n,
stride s) with two CIFAR changes of the reference: stride 1 in the stem and in the 24-channel
stage (the paper has 2 in both), so 32x32 reaches the last stage at 4x4. A block is 1x1 expand
conv to t x input channels -> BN -> ReLU -> 3x3 depthwise conv (the stride) -> BN -> ReLU -> 1x1
project conv -> BN, with no activation after the projection (the linear bottleneck). Stride-1
blocks add a shortcut: the input, or where the channel count changes a 1x1 conv + BN (the
reference's choice; the paper adds no shortcut there); stride-2 blocks have none. Then a 1x1 conv
to 1280 channels with BN and ReLU, global average pool and one linear layer. The expansion conv
is there also at t = 1. The reference uses ReLU, not the paper's ReLU6. 2,296,922 parameters for
10 classes. `activation` (relu, leaky_relu, elu, gelu, silu) replaces every ReLU.
"""

from __future__ import annotations

from torch import Tensor, nn

from cifarlab.models.layers import CifarModel, ClassifierHead, conv1x1, conv3x3, conv_bn_act, make_activation
from cifarlab.models.registry import register_variant

# (expansion t, output channels c, blocks n, stride s of the first block); the reference's CIFAR strides.
INVERTED_RESIDUAL_STAGES: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),  # stride 2 in the paper
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280


class InvertedResidual(nn.Module):
    """Expand (1x1) -> depthwise 3x3 -> linear project (1x1), each with BN; shortcut at stride 1."""

    def __init__(self, in_channels: int, out_channels: int, expansion: int, stride: int, activation: str = "relu"):
        super().__init__()
        hidden = expansion * in_channels
        self.expand = nn.Sequential(
            conv1x1(in_channels, hidden), nn.BatchNorm2d(hidden), make_activation(activation, inplace=True)
        )
        self.depthwise = nn.Sequential(
            conv3x3(hidden, hidden, stride, groups=hidden), nn.BatchNorm2d(hidden), make_activation(activation, inplace=True)
        )
        self.project = nn.Sequential(conv1x1(hidden, out_channels), nn.BatchNorm2d(out_channels))
        self.shortcut: nn.Module | None = None
        if stride == 1:
            self.shortcut = nn.Identity() if in_channels == out_channels else nn.Sequential(
                conv1x1(in_channels, out_channels), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: Tensor) -> Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return out if self.shortcut is None else out + self.shortcut(x)


class MobileNetV2(CifarModel):
    """MobileNetV2 at width 1 with the reference's CIFAR strides."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.stem = nn.Sequential(
            conv3x3(3, STEM_CHANNELS), nn.BatchNorm2d(STEM_CHANNELS), make_activation(activation, inplace=True)
        )
        blocks, channels = [], STEM_CHANNELS
        for expansion, out_channels, count, stride in INVERTED_RESIDUAL_STAGES:
            for index in range(count):
                blocks.append(InvertedResidual(channels, out_channels, expansion, stride if index == 0 else 1, activation))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.last_conv = conv_bn_act(channels, LAST_CHANNELS, kernel_size=1, activation=activation)
        self.head = ClassifierHead(LAST_CHANNELS, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.last_conv(self.blocks(self.stem(x))))


register_variant("mobilenet_v2", MobileNetV2, "MobileNetV2 at width 1: seventeen inverted-residual blocks.")
