"""ShuffleNet (v1) with 2 or 3 groups, for 32x32 images.

Zhang, Zhou, Lin, Sun, "ShuffleNet: An Extremely Efficient Convolutional Neural Network for
Mobile Devices", CVPR 2018 (arXiv:1707.01083).

Layout of kuangliu/pytorch-cifar: a 1x1 stride-1 stem conv to 24 channels with BN and ReLU (the
reference's stem is 1x1, not the paper's 3x3 stride-2 conv and max-pool; kept so the parameter
counts agree), then three stages of 4, 8 and 4 units ending at 200/400/800 channels (g = 2) or
240/480/960 (g = 3). A unit's residual branch is a 1x1 group conv (g groups; 1 group when it reads
the 24-channel stem) to a quarter of the branch width -> BN -> ReLU -> channel shuffle -> 3x3
depthwise conv (the stride) -> BN -> ReLU -> 1x1 group conv (g groups) -> BN. The first unit of
every stage has stride 2: its branch gives (stage width - input channels) channels, concatenated
with the input average-pooled 3x3 stride 2; the other units add the input. ReLU follows the add
or concatenation. Three stride-2 stages take 32x32 to 4x4; global average pool and one linear
layer. The reference puts a ReLU after the depthwise conv, where the paper has none; kept.
Parameters for 10 classes: g = 2 887,582, g = 3 862,768. `activation` (relu, leaky_relu, elu,
gelu, silu) replaces every ReLU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cifarlab.models.layers import CifarModel, ClassifierHead, conv1x1, conv3x3, make_activation
from cifarlab.models.registry import register_variant

STEM_CHANNELS = 24
UNITS_PER_STAGE = (4, 8, 4)
STAGE_WIDTHS = {2: (200, 400, 800), 3: (240, 480, 960)}  # output channels per stage for g groups


def grouped_pointwise(in_channels: int, out_channels: int, groups: int) -> nn.Conv2d:
    """1x1 conv in `groups` groups (ShuffleNet's cheap channel mixing)."""
    return nn.Conv2d(in_channels, out_channels, 1, groups=groups, bias=False)


class ShuffleUnit(nn.Module):
    """ShuffleNet unit: grouped 1x1 -> shuffle -> depthwise 3x3 -> grouped 1x1, joined with its input.

    At stride 2 the branch output is concatenated with the average-pooled input, so the unit ends
    with `in_channels + branch_channels` channels; at stride 1 the input is added.
    """

    def __init__(self, in_channels: int, branch_channels: int, stride: int, groups: int, activation: str = "relu"):
        super().__init__()
        self.stride = stride
        mid = branch_channels // 4
        # The 24 stem channels are not split into groups (the paper: "we do not apply group convolution
        # on the first pointwise layer because the number of input channels is relatively small").
        first_groups = 1 if in_channels == STEM_CHANNELS else groups
        self.reduce = nn.Sequential(
            grouped_pointwise(in_channels, mid, first_groups), nn.BatchNorm2d(mid),
            make_activation(activation, inplace=True), nn.ChannelShuffle(first_groups),
        )
        self.depthwise = nn.Sequential(
            conv3x3(mid, mid, stride, groups=mid), nn.BatchNorm2d(mid), make_activation(activation, inplace=True)
        )
        self.expand = nn.Sequential(grouped_pointwise(mid, branch_channels, groups), nn.BatchNorm2d(branch_channels))
        self.shortcut = nn.AvgPool2d(3, stride=2, padding=1) if stride == 2 else nn.Identity()
        self.act = make_activation(activation, inplace=True)
        self.out_channels = in_channels + branch_channels if stride == 2 else branch_channels

    def forward(self, x: Tensor) -> Tensor:
        branch = self.expand(self.depthwise(self.reduce(x)))
        shortcut = self.shortcut(x)
        return self.act(torch.cat([branch, shortcut], 1) if self.stride == 2 else branch + shortcut)


class ShuffleNet(CifarModel):
    """ShuffleNet v1 (scale 1) with `groups` groups in its pointwise convs."""

    def __init__(self, groups: int, num_classes: int = 10, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.stem = nn.Sequential(
            conv1x1(3, STEM_CHANNELS), nn.BatchNorm2d(STEM_CHANNELS), make_activation(activation, inplace=True)
        )
        stages, channels = [], STEM_CHANNELS
        for width, count in zip(STAGE_WIDTHS[groups], UNITS_PER_STAGE):
            units = []
            for index in range(count):
                # The first unit's branch supplies only the channels its pooled input does not.
                unit = ShuffleUnit(channels, width - channels if index == 0 else width, 2 if index == 0 else 1,
                                   groups, activation)
                channels = unit.out_channels
                units.append(unit)
            stages.append(nn.Sequential(*units))
        self.stages = nn.Sequential(*stages)
        self.head = ClassifierHead(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))


for _groups in STAGE_WIDTHS:
    register_variant(
        f"shufflenet_g{_groups}", ShuffleNet,
        f"ShuffleNet v1, {_groups} groups: stages of {list(UNITS_PER_STAGE)} units to {STAGE_WIDTHS[_groups][-1]} channels.",
        groups=_groups,
    )
