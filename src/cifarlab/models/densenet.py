"""DenseNet-121/161/169/201 and the small CIFAR DenseNet for 32x32 images.

Huang, Liu, van der Maaten, Weinberger, "Densely Connected Convolutional Networks", CVPR 2017
(arXiv:1608.06993).

Layout of the common pytorch-cifar reference (DenseNet-BC): a 3x3 stride-1 stem conv to twice
the growth rate (no BN, no max-pool); four dense blocks of BN-ReLU-conv1x1 (4k) and
BN-ReLU-conv3x3 (k) layers, each concatenating its k new channels to its input; between blocks
a transition BN-ReLU-conv1x1 halving the channels (rounded down) and a 2x2 average pool; a
final BN-ReLU, global average pool and linear layer. `activation` (relu, leaky_relu, elu, gelu,
silu) replaces every ReLU. Parameters for 10 classes: 121 6,956,298,
161 26,482,378, 169 12,493,322, 201 18,104,330, densenet_cifar (k = 12) 1,000,618.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cifarlab.models.layers import (
    CifarModel,
    ClassifierHead,
    conv1x1,
    conv3x3,
    make_activation,
)
from cifarlab.models.registry import register_variant


class DenseLayer(nn.Module):
    """BN-act-conv1x1 to 4k channels, BN-act-conv3x3 to k; output is [new k channels, input]."""

    def __init__(self, in_channels: int, growth_rate: int, activation: str = "relu"):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv1x1(in_channels, 4 * growth_rate)
        self.bn2 = nn.BatchNorm2d(4 * growth_rate)
        self.conv2 = conv3x3(4 * growth_rate, growth_rate)
        self.relu = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        return torch.cat([out, x], 1)


class Transition(nn.Sequential):
    """BN-act-conv1x1 to fewer channels, then 2x2 average pool."""

    def __init__(self, in_channels: int, out_channels: int, activation: str = "relu"):
        super().__init__(
            nn.BatchNorm2d(in_channels), make_activation(activation), conv1x1(in_channels, out_channels),
            nn.AvgPool2d(2),
        )


class DenseNet(CifarModel):
    """DenseNet-BC with growth rate `growth_rate` and compression `reduction` at each transition."""

    def __init__(
        self,
        layers_per_block: Sequence[int],
        growth_rate: int,
        num_classes: int = 10,
        reduction: float = 0.5,
        dropout: float = 0.0,
        activation: str = "relu",
    ):
        super().__init__()
        channels = 2 * growth_rate
        self.stem = conv3x3(3, channels)
        body = []
        for index, count in enumerate(layers_per_block):
            for _ in range(count):
                body.append(DenseLayer(channels, growth_rate, activation))
                channels += growth_rate
            if index < len(layers_per_block) - 1:
                out_channels = math.floor(channels * reduction)
                body.append(Transition(channels, out_channels, activation))
                channels = out_channels
        body += [nn.BatchNorm2d(channels), make_activation(activation, inplace=True)]
        self.features = nn.Sequential(*body)
        self.head = ClassifierHead(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(self.stem(x)))


for _name, _layers, _growth, _doc in (
    ("densenet121", (6, 12, 24, 16), 32, "DenseNet-121: layers [6, 12, 24, 16], growth 32."),
    ("densenet161", (6, 12, 36, 24), 48, "DenseNet-161: layers [6, 12, 36, 24], growth 48."),
    ("densenet169", (6, 12, 32, 32), 32, "DenseNet-169: layers [6, 12, 32, 32], growth 32."),
    ("densenet201", (6, 12, 48, 32), 32, "DenseNet-201: layers [6, 12, 48, 32], growth 32."),
    ("densenet_cifar", (6, 12, 24, 16), 12,
     "The small CIFAR DenseNet: DenseNet-121 layout with growth 12 (about 1.0M parameters)."),
):
    register_variant(_name, DenseNet, _doc, layers_per_block=_layers, growth_rate=_growth)
