"""RegNetX-200MF, RegNetX-400MF and RegNetY-400MF for 32x32 images.

Radosavovic, Kosaraju, Girshick, He, Dollar, "Designing Network Design Spaces", CVPR 2020
(arXiv:2003.13678).

Layout of kuangliu/pytorch-cifar: a 3x3 stride-1 stem conv to 64 channels with BN and ReLU (the
paper's stem is 32 channels at stride 2), then four stages of the paper's depths and widths with
strides 1, 1, 2, 2 (the paper: 2 in every stage), so 32x32 ends at 8x8; global average pool and
one linear layer. A block (the X block, bottleneck ratio 1) is 1x1 conv -> BN -> ReLU -> 3x3
grouped conv (groups of `group_width` channels, carries the stride) -> BN -> ReLU -> 1x1 conv ->
BN, plus the shortcut (identity, or 1x1 conv + BN where the shape changes), then ReLU. The Y block
adds squeeze-and-excitation after the grouped conv, its squeeze width a quarter of the block's
input channels, ReLU inside. Parameters for 10 classes: X-200MF 2,321,946, X-400MF 4,779,338,
Y-400MF 5,714,362. `activation` (relu, leaky_relu, elu, gelu, silu) replaces every ReLU, the one
inside squeeze-and-excitation included; the sigmoid gate stays.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from cifarlab.models.layers import Bottleneck, StemStagesHead, conv3x3, make_activation, residual_stages
from cifarlab.models.registry import register_variant
from cifarlab.models.senet import SqueezeExcitation

STAGE_STRIDES = (1, 1, 2, 2)
STEM_CHANNELS = 64
# name -> (blocks per stage, stage widths, group width, squeeze-and-excitation ratio), paper Appendix C.
CONFIGS: dict[str, tuple[tuple[int, ...], tuple[int, ...], int, float]] = {
    "regnetx_200mf": ((1, 1, 4, 7), (24, 56, 152, 368), 8, 0.0),
    "regnetx_400mf": ((1, 2, 7, 12), (32, 64, 160, 384), 16, 0.0),
    "regnety_400mf": ((1, 2, 7, 12), (32, 64, 160, 384), 16, 0.25),
}


class RegNetBlock(Bottleneck):
    """X block (a ResNeXt bottleneck of ratio 1 in groups of `group_width` channels); Y adds squeeze-and-excitation."""

    def __init__(
        self, in_channels: int, out_channels: int, stride: int, group_width: int, se_ratio: float,
        activation: str = "relu",
    ):
        # Bottleneck ratio 1: the grouped conv is as wide as the block's output.
        super().__init__(in_channels, out_channels, out_channels, stride, out_channels // group_width, activation)
        self.se: nn.Module = nn.Identity()
        if se_ratio > 0:
            self.se = SqueezeExcitation(out_channels, round(in_channels * se_ratio), activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.se(self.relu(self.bn2(self.conv2(out))))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


class RegNet(StemStagesHead):
    """RegNet with the reference's CIFAR stem and strides."""

    def __init__(
        self, blocks_per_stage: Sequence[int], widths: Sequence[int], group_width: int, se_ratio: float,
        num_classes: int = 10, dropout: float = 0.0, activation: str = "relu",
    ):
        def block(in_channels: int, width: int, stride: int) -> RegNetBlock:
            return RegNetBlock(in_channels, width, stride, group_width, se_ratio, activation)

        stem = nn.Sequential(
            conv3x3(3, STEM_CHANNELS), nn.BatchNorm2d(STEM_CHANNELS), make_activation(activation, inplace=True)
        )
        stages, channels = residual_stages(block, STEM_CHANNELS, widths, STAGE_STRIDES, blocks_per_stage)
        super().__init__(stem, stages, channels, num_classes, dropout)


for _name, (_blocks, _widths, _group_width, _se) in CONFIGS.items():
    register_variant(
        _name, RegNet,
        f"RegNet{_name[6].upper()}-{_name[8:].upper()}: blocks {list(_blocks)}, widths {list(_widths)}, "
        f"group width {_group_width}" + (f", squeeze-and-excitation {_se}." if _se else "."),
        blocks_per_stage=_blocks, widths=_widths, group_width=_group_width, se_ratio=_se,
    )
