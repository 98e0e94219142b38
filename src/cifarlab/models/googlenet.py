"""GoogLeNet (Inception v1) with BatchNorm for 32x32 images.

Szegedy et al., "Going Deeper with Convolutions", CVPR 2015 (arXiv:1409.4842); BatchNorm after
every conv as in Ioffe, Szegedy, ICML 2015 (arXiv:1502.03167).

Layout of kuangliu/pytorch-cifar: a 3x3 stride-1 stem conv to 192 channels (no max-pool), the
paper's nine Inception modules (3a, 3b | 4a-4e | 5a, 5b, with the channel counts of its Table 1)
at 32x32, 16x16 and 8x8, a 3x3 stride-2 max-pool between the groups, global average pool and one
linear layer. An Inception module concatenates four branches: 1x1; 1x1 reduce -> 3x3; 1x1 reduce
-> 3x3 -> 3x3 (two stacked 3x3 convs in place of the paper's 5x5, as in the reference); 3x3
stride-1 max-pool -> 1x1. Every conv keeps its own bias before the BN (redundant, since BN
shifts anyway, but kept so the parameter count is the reference's): 6,166,250 parameters for
10 classes. `activation` (relu, leaky_relu, elu, gelu, silu) replaces every ReLU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cifarlab.models.layers import CifarModel, ClassifierHead, make_activation
from cifarlab.models.registry import register_variant

POOL = "pool"
# Inception modules in order (paper, Table 1): name, 1x1, 3x3 reduce, 3x3, "5x5" reduce, "5x5", pool projection.
# POOL marks the 3x3 stride-2 max-pool that halves the image between the module groups.
INCEPTION_MODULES: tuple[tuple[str, int, int, int, int, int, int] | str, ...] = (
    ("3a", 64, 96, 128, 16, 32, 32),
    ("3b", 128, 128, 192, 32, 96, 64),
    POOL,
    ("4a", 192, 96, 208, 16, 48, 64),
    ("4b", 160, 112, 224, 24, 64, 64),
    ("4c", 128, 128, 256, 24, 64, 64),
    ("4d", 112, 144, 288, 32, 64, 64),
    ("4e", 256, 160, 320, 32, 128, 128),
    POOL,
    ("5a", 256, 160, 320, 32, 128, 128),
    ("5b", 384, 192, 384, 48, 128, 128),
)
STEM_CHANNELS = 192


def conv_bias_bn_act(in_channels: int, out_channels: int, kernel_size: int, activation: str) -> nn.Sequential:
    """Conv with its own bias (the reference keeps it) -> BatchNorm -> activation; size kept."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2),
        nn.BatchNorm2d(out_channels),
        make_activation(activation, inplace=True),
    )


class Inception(nn.Module):
    """Four parallel branches concatenated along channels (see the module docstring)."""

    def __init__(
        self, in_channels: int, branch1x1: int, reduce3x3: int, branch3x3: int, reduce5x5: int, branch5x5: int,
        pool_projection: int, activation: str = "relu",
    ):
        super().__init__()
        self.branch1x1 = conv_bias_bn_act(in_channels, branch1x1, 1, activation)
        self.branch3x3 = nn.Sequential(
            conv_bias_bn_act(in_channels, reduce3x3, 1, activation),
            conv_bias_bn_act(reduce3x3, branch3x3, 3, activation),
        )
        # The paper's 5x5 field of view, reached by two 3x3 convs.
        self.branch5x5 = nn.Sequential(
            conv_bias_bn_act(in_channels, reduce5x5, 1, activation),
            conv_bias_bn_act(reduce5x5, branch5x5, 3, activation),
            conv_bias_bn_act(branch5x5, branch5x5, 3, activation),
        )
        self.branch_pool = nn.Sequential(
            nn.MaxPool2d(3, stride=1, padding=1), conv_bias_bn_act(in_channels, pool_projection, 1, activation)
        )
        self.out_channels = branch1x1 + branch3x3 + branch5x5 + pool_projection

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([self.branch1x1(x), self.branch3x3(x), self.branch5x5(x), self.branch_pool(x)], 1)


class GoogLeNet(CifarModel):
    """GoogLeNet with the CIFAR stem: stem -> Inception modules and max-pools -> pooled linear head."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.stem = conv_bias_bn_act(3, STEM_CHANNELS, 3, activation)
        channels, layers = STEM_CHANNELS, nn.Sequential()
        for index, spec in enumerate(INCEPTION_MODULES):
            if spec == POOL:
                layers.add_module(f"maxpool{index}", nn.MaxPool2d(3, stride=2, padding=1))
                continue
            name, *widths = spec
            module = Inception(channels, *widths, activation=activation)
            layers.add_module(f"inception{name}", module)
            channels = module.out_channels
        self.features = layers
        self.head = ClassifierHead(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(self.stem(x)))


register_variant("googlenet", GoogLeNet, "GoogLeNet (Inception v1) with BatchNorm: nine Inception modules.")
