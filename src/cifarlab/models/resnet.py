"""ResNet-18/34/50/101/152 for 32x32 images.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv:1512.03385).

CIFAR layout of the common pytorch-cifar reference: a 3x3 stride-1 stem conv with 64 channels,
BN and ReLU and no max-pool; four stages of 64/128/256/512 channels (strides 1, 2, 2, 2), post-
activation basic blocks (18, 34) or bottlenecks with expansion 4 (50, 101, 152), 1x1 conv + BN
projection shortcuts where the shape changes; global average pool and one linear layer.
`activation` (relu, leaky_relu, elu, gelu, silu) replaces every ReLU.
Parameters for 10 classes: ResNet-18 11,173,962, ResNet-34 21,282,122, ResNet-50 23,520,842,
ResNet-101 42,512,970, ResNet-152 58,156,618.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from torch import nn

from cifarlab.models.layers import (
    BasicBlock,
    Bottleneck,
    StemStagesHead,
    conv3x3,
    make_activation,
    residual_stages,
)
from cifarlab.models.registry import register_variant

STAGE_WIDTHS = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)
EXPANSION = 4  # output channels of a bottleneck per channel of its 3x3 conv
# Blocks per stage of each depth; depths from 50 use bottlenecks (three convs a block), others basic blocks.
BLOCKS_PER_STAGE = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def bottleneck(in_channels: int, channels: int, stride: int = 1, activation: str = "relu") -> Bottleneck:
    """ResNet bottleneck: 3x3 at `channels`, output at 4x `channels`."""
    return Bottleneck(in_channels, channels, EXPANSION * channels, stride, activation=activation)


def resnet_stages(
    block: Callable[..., nn.Module], blocks_per_stage: Sequence[int], activation: str
) -> tuple[nn.Sequential, int]:
    """The four stages of 64/128/256/512-channel blocks from a 64-channel stem, and the channels they end with."""
    return residual_stages(partial(block, activation=activation), 64, STAGE_WIDTHS, STAGE_STRIDES, blocks_per_stage)


class ResNet(StemStagesHead):
    """ResNet with the CIFAR stem (3x3, stride 1, no max-pool); `block` is `BasicBlock` or `bottleneck`."""

    def __init__(
        self, block: Callable[..., nn.Module], blocks_per_stage: Sequence[int], num_classes: int = 10, dropout: float = 0.0,
        activation: str = "relu",
    ):
        stem = nn.Sequential(conv3x3(3, 64), nn.BatchNorm2d(64), make_activation(activation, inplace=True))
        stages, width = resnet_stages(block, blocks_per_stage, activation)
        super().__init__(stem, stages, width, num_classes, dropout)


for _depth, _blocks in BLOCKS_PER_STAGE.items():
    _deep = _depth >= 50
    register_variant(
        f"resnet{_depth}", ResNet, f"ResNet-{_depth}: {'bottlenecks' if _deep else 'basic blocks'} {list(_blocks)}.",
        block=bottleneck if _deep else BasicBlock, blocks_per_stage=_blocks,
    )
