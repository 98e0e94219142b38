"""MobileNet (v1): depthwise-separable convolutions, for 32x32 images.

Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
Applications", 2017 (arXiv:1704.04861).

Layout of kuangliu/pytorch-cifar: a 3x3 stride-1 stem conv to 32 channels with BN and ReLU (the
paper's stem has stride 2), then the paper's thirteen depthwise-separable layers (64, 128/2, 128,
256/2, 256, 512/2, five times 512, 1024/2, 1024; "/2" marks stride 2), each a 3x3 depthwise conv
-> BN -> ReLU -> 1x1 pointwise conv -> BN -> ReLU, all convs without bias; four stride-2 layers
take 32x32 to 2x2, then global average pool and one linear layer. 3,217,226 parameters for 10
classes. `activation` (relu, leaky_relu, elu, gelu, silu) replaces every ReLU.
"""

from __future__ import annotations

from torch import Tensor, nn

from cifarlab.models.layers import CifarModel, ClassifierHead, conv1x1, conv3x3, make_activation
from cifarlab.models.registry import register_variant

# (output channels, stride) of each depthwise-separable layer, paper Table 1.
SEPARABLE_LAYERS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)  # fmt: skip
STEM_CHANNELS = 32


def depthwise_separable(in_channels: int, out_channels: int, stride: int, activation: str) -> nn.Sequential:
    """3x3 depthwise conv (carries the stride) -> BN -> act -> 1x1 pointwise conv -> BN -> act."""
    return nn.Sequential(
        conv3x3(in_channels, in_channels, stride, groups=in_channels),
        nn.BatchNorm2d(in_channels),
        make_activation(activation, inplace=True),
        conv1x1(in_channels, out_channels),
        nn.BatchNorm2d(out_channels),
        make_activation(activation, inplace=True),
    )


class MobileNet(CifarModel):
    """MobileNet v1 at width 1 with the CIFAR stride-1 stem."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.stem = nn.Sequential(
            conv3x3(3, STEM_CHANNELS), nn.BatchNorm2d(STEM_CHANNELS), make_activation(activation, inplace=True)
        )
        layers, channels = [], STEM_CHANNELS
        for out_channels, stride in SEPARABLE_LAYERS:
            layers.append(depthwise_separable(channels, out_channels, stride, activation))
            channels = out_channels
        self.features = nn.Sequential(*layers)
        self.head = ClassifierHead(channels, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(self.stem(x)))


register_variant("mobilenet", MobileNet, "MobileNet v1: thirteen depthwise-separable layers, width 1.")
