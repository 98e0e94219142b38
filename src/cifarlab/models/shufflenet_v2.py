"""ShuffleNetV2 at widths 0.5x, 1x, 1.5x and 2x, for 32x32 images.

Ma, Zhang, Zheng, Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
ECCV 2018 (arXiv:1807.11164).

Layout of kuangliu/pytorch-cifar: a 3x3 stride-1 stem conv to 24 channels with BN and ReLU (no
max-pool); three stages, each a down-sampling unit (stride 2) and then 3, 7 and 3 basic units;
a 1x1 conv to 1024 channels (2048 at 2x) with BN and ReLU, global average pool and one linear
layer. A basic unit splits its channels in half, passes the first half through and sends the
second through 1x1 conv -> BN -> ReLU -> 3x3 depthwise -> BN -> 1x1 conv -> BN -> ReLU, then
concatenates and shuffles the channels in 2 groups. A down-sampling unit runs two branches on
the whole input, 3x3 depthwise (stride 2) -> BN -> 1x1 -> BN -> ReLU and 1x1 -> BN -> ReLU -> 3x3
depthwise (stride 2) -> BN -> 1x1 -> BN -> ReLU, each to half the stage width, concatenated and
shuffled. Stage widths (paper Table 5): 48/96/192, 116/232/464, 176/352/704; at 2x the reference
has 224/488/976 (the paper's first stage has 244), kept. Parameters for 10 classes: 0.5x 352,042,
1x 1,263,854, 1.5x 2,488,874, 2x 5,338,026. `activation` (relu, leaky_relu, elu, gelu, silu)
replaces every ReLU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cifarlab.models.layers import CifarModel, ClassifierHead, conv3x3, conv_bn_act
from cifarlab.models.registry import register_variant

STEM_CHANNELS = 24
BASIC_UNITS_PER_STAGE = (3, 7, 3)  # after each stage's down-sampling unit
# name suffix -> (stage widths, channels of the last 1x1 conv), as the reference builds them.
WIDTHS: dict[str, tuple[tuple[int, int, int], int]] = {
    "x0_5": ((48, 96, 192), 1024),
    "x1": ((116, 232, 464), 1024),
    "x1_5": ((176, 352, 704), 1024),
    "x2": ((224, 488, 976), 2048),
}


def depthwise_bn(channels: int, stride: int) -> nn.Sequential:
    """3x3 depthwise conv -> BN, no activation (the paper keeps the depthwise conv linear)."""
    return nn.Sequential(conv3x3(channels, channels, stride, groups=channels), nn.BatchNorm2d(channels))


def pointwise_bn_act(in_channels: int, out_channels: int, activation: str) -> nn.Sequential:
    """1x1 conv -> BN -> activation."""
    return conv_bn_act(in_channels, out_channels, kernel_size=1, activation=activation)


class BasicUnit(nn.Module):
    """Split channels in half; transform one half; concatenate and shuffle (size and width kept)."""

    def __init__(self, channels: int, activation: str = "relu"):
        super().__init__()
        half = channels // 2
        self.branch = nn.Sequential(
            pointwise_bn_act(half, half, activation), depthwise_bn(half, 1), pointwise_bn_act(half, half, activation)
        )
        self.shuffle = nn.ChannelShuffle(2)

    def forward(self, x: Tensor) -> Tensor:
        kept, transformed = x.chunk(2, dim=1)
        return self.shuffle(torch.cat([kept, self.branch(transformed)], 1))


class DownsamplingUnit(nn.Module):
    """Two stride-2 branches on the whole input, each to half of `out_channels`; concatenate and shuffle."""

    def __init__(self, in_channels: int, out_channels: int, activation: str = "relu"):
        super().__init__()
        half = out_channels // 2
        self.left = nn.Sequential(depthwise_bn(in_channels, 2), pointwise_bn_act(in_channels, half, activation))
        self.right = nn.Sequential(
            pointwise_bn_act(in_channels, half, activation), depthwise_bn(half, 2), pointwise_bn_act(half, half, activation)
        )
        self.shuffle = nn.ChannelShuffle(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.shuffle(torch.cat([self.left(x), self.right(x)], 1))


class ShuffleNetV2(CifarModel):
    """ShuffleNetV2 with the given stage widths and last-conv channels."""

    def __init__(
        self, stage_widths: tuple[int, int, int], last_channels: int, num_classes: int = 10, dropout: float = 0.0,
        activation: str = "relu",
    ):
        super().__init__()
        self.stem = conv_bn_act(3, STEM_CHANNELS, activation=activation)
        stages, channels = [], STEM_CHANNELS
        for width, count in zip(stage_widths, BASIC_UNITS_PER_STAGE):
            units = [DownsamplingUnit(channels, width, activation)]
            units += [BasicUnit(width, activation) for _ in range(count)]
            stages.append(nn.Sequential(*units))
            channels = width
        self.stages = nn.Sequential(*stages)
        self.last_conv = pointwise_bn_act(channels, last_channels, activation)
        self.head = ClassifierHead(last_channels, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.last_conv(self.stages(self.stem(x))))


for _suffix, (_widths, _last) in WIDTHS.items():
    register_variant(
        f"shufflenet_v2_{_suffix}", ShuffleNetV2,
        f"ShuffleNetV2 {_suffix.replace('_', '.')}: stage widths {list(_widths)}, last conv {_last} channels.",
        stage_widths=_widths, last_channels=_last,
    )
