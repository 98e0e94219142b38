"""EfficientNet-B0 for 32x32 images.

Tan, Le, "EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks", ICML 2019
(arXiv:1905.11946).

Layout of kuangliu/pytorch-cifar: a 3x3 stride-1 stem conv to 32 channels with BN and swish
(SiLU; the paper's stem has stride 2), then the paper's sixteen MBConv blocks (Table 1:
expansion, channels, repeats, kernel, stride), whose four stride-2 stages take 32x32 to 2x2; no 1x1
conv to 1280 channels before the pool (the paper has one): global average pool, dropout 0.2 and
one linear layer from 320 channels. A block is 1x1 expand conv -> BN -> swish (skipped at expansion 1) -> kxk
depthwise conv (the stride) -> BN -> swish -> squeeze-and-excitation (squeeze width a quarter of
the block's input channels, swish inside) -> 1x1 project conv -> BN; blocks with stride 1 and equal
widths add their input. 3,599,686 parameters for 10 classes.

Two details follow the reference exactly:
- it builds the 1x1 expand conv and its BN also in the first block, whose expansion is 1 and whose
  forward pass skips them; they are kept (1,088 parameters that never receive a gradient) so the
  parameter count and the layer list agree with the reference;
- its drop-connect rate is meant to rise from 0 to 0.2 over the blocks, but the block counter it
  reads is never advanced, so every rate is 0 and no block is ever dropped: `drop_connect`
  defaults to 0. Setting it (0.2 in the paper) drops each residual branch per sample in training
  with probability `drop_connect * i / 16` for block i = 0..15, scaling kept samples by 1 / (1 - p).
The head's dropout 0.2 acts in training only, as in the reference (`dropout` sets it).
`activation` (swish by default; relu, leaky_relu, elu, gelu) replaces every swish, the one inside
squeeze-and-excitation included; the sigmoid gate stays.
"""

from __future__ import annotations

from torch import Tensor, nn

from cifarlab.models.layers import CifarModel, ClassifierHead, conv1x1, conv3x3, dropout_layer, make_activation
from cifarlab.models.registry import register_variant
from cifarlab.models.senet import SqueezeExcitation

# (expansion, output channels, blocks, kernel size, stride of the first block): the reference's B0 stages.
MBCONV_STAGES: tuple[tuple[int, int, int, int, int], ...] = (
    (1, 16, 1, 3, 1),
    (6, 24, 2, 3, 2),
    (6, 40, 2, 5, 2),
    (6, 80, 3, 3, 2),
    (6, 112, 3, 5, 1),
    (6, 192, 4, 5, 2),
    (6, 320, 1, 3, 1),
)
STEM_CHANNELS = 32
SE_RATIO = 0.25  # squeeze width per input channel of the block


def stochastic_depth(x: Tensor, rate: float, training: bool) -> Tensor:
    """Zero whole samples of a residual branch with probability `rate`, scaling the rest by 1 / (1 - rate)."""
    if not training or rate == 0.0:
        return x
    keep = 1.0 - rate
    mask = x.new_empty(x.shape[0], 1, 1, 1).bernoulli_(keep)
    return x * mask / keep


class MBConv(nn.Module):
    """Mobile inverted bottleneck with squeeze-and-excitation (see the module docstring)."""

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int, stride: int, expansion: int,
        drop_rate: float = 0.0, activation: str = "silu",
    ):
        super().__init__()
        hidden = expansion * in_channels
        self.skip_expand = expansion == 1  # built all the same: see the module docstring
        self.expand = nn.Sequential(conv1x1(in_channels, hidden), nn.BatchNorm2d(hidden), make_activation(activation))
        self.depthwise = nn.Sequential(
            nn.Conv2d(hidden, hidden, kernel_size, stride, padding=kernel_size // 2, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            make_activation(activation),
        )
        self.se = SqueezeExcitation(hidden, int(in_channels * SE_RATIO), activation)
        self.project = nn.Sequential(conv1x1(hidden, out_channels), nn.BatchNorm2d(out_channels))
        self.residual = stride == 1 and in_channels == out_channels
        self.drop_rate = drop_rate

    def forward(self, x: Tensor) -> Tensor:
        out = x if self.skip_expand else self.expand(x)
        out = self.project(self.se(self.depthwise(out)))
        if not self.residual:
            return out
        return stochastic_depth(out, self.drop_rate, self.training) + x


class EfficientNet(CifarModel):
    """EfficientNet with the reference's CIFAR stem and head (see the module docstring)."""

    def __init__(
        self, num_classes: int = 10, dropout: float = 0.2, drop_connect: float = 0.0, activation: str = "silu"
    ):
        super().__init__()
        dropout_layer(drop_connect, "drop_connect")  # checks the value, with the option's name in the error
        self.stem = nn.Sequential(conv3x3(3, STEM_CHANNELS), nn.BatchNorm2d(STEM_CHANNELS), make_activation(activation))
        total = sum(stage[2] for stage in MBCONV_STAGES)
        blocks, channels = [], STEM_CHANNELS
        for expansion, out_channels, count, kernel_size, stride in MBCONV_STAGES:
            for index in range(count):
                rate = drop_connect * len(blocks) / total
                blocks.append(MBConv(channels, out_channels, kernel_size, stride if index == 0 else 1, expansion,
                                     rate, activation))
                channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.head = ClassifierHead(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.blocks(self.stem(x)))


register_variant(
    "efficientnet_b0", EfficientNet, "EfficientNet-B0: sixteen MBConv blocks with squeeze-and-excitation; dropout 0.2."
)
