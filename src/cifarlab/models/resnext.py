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
50_32x4d 22,991,178. `activation` (relu, leaky_relu, elu, gelu, silu) replaces every ReLU.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from cifarlab.models.layers import (
    Bottleneck,
    StemStagesHead,
    conv1x1,
    make_activation,
    residual_stages,
)
from cifarlab.models.registry import register_variant

EXPANSION = 2  # output channels of a block per channel of its grouped conv
RESNEXT29 = (3, 3, 3)
RESNEXT50 = (3, 4, 6, 3)


class ResNeXt(StemStagesHead):
    """ResNeXt with `blocks_per_stage` blocks; the first stage has stride 1, the others 2."""

    def __init__(
        self,
        blocks_per_stage: Sequence[int],
        cardinality: int,
        bottleneck_width: int,
        num_classes: int = 10,
        dropout: float = 0.0,
        activation: str = "relu",
    ):
        def grouped_bottleneck(in_channels: int, width: int, stride: int) -> Bottleneck:
            group_width = cardinality * width
            return Bottleneck(in_channels, group_width, EXPANSION * group_width, stride, cardinality, activation)

        stem = nn.Sequential(conv1x1(3, 64), nn.BatchNorm2d(64), make_activation(activation, inplace=True))
        count = len(blocks_per_stage)
        widths = [bottleneck_width * 2**stage for stage in range(count)]
        strides = [1] + [2] * (count - 1)
        stages, channels = residual_stages(grouped_bottleneck, 64, widths, strides, blocks_per_stage)
        super().__init__(stem, stages, channels, num_classes, dropout)


for _name, _blocks, _cardinality, _width, _doc in (
    ("resnext29_2x32d", RESNEXT29, 2, 32, "ResNeXt-29, cardinality 2, width 32."),
    ("resnext29_2x64d", RESNEXT29, 2, 64, "ResNeXt-29, cardinality 2, width 64."),
    ("resnext29_4x64d", RESNEXT29, 4, 64, "ResNeXt-29, cardinality 4, width 64."),
    ("resnext29_8x64d", RESNEXT29, 8, 64, "ResNeXt-29, cardinality 8, width 64 (the largest of the zoo, about 14 GMACs per image)."),
    ("resnext29_32x4d", RESNEXT29, 32, 4, "ResNeXt-29, cardinality 32, width 4."),
    ("resnext50_2x40d", RESNEXT50, 2, 40, "ResNeXt-50, cardinality 2, width 40."),
    ("resnext50_8x14d", RESNEXT50, 8, 14, "ResNeXt-50, cardinality 8, width 14."),
    ("resnext50_32x4d", RESNEXT50, 32, 4, "ResNeXt-50, cardinality 32, width 4."),
):
    register_variant(
        _name, ResNeXt, _doc, blocks_per_stage=_blocks, cardinality=_cardinality, bottleneck_width=_width
    )
