"""A plain five-block ConvNet for 32x32 images (the from-scratch baseline of the DL4DS challenge).

Design after Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
Recognition", ICLR 2015 (arXiv:1409.1556): stacks of 3x3 convs between 2x2 max-pools, with
BatchNorm (Ioffe, Szegedy 2015, arXiv:1502.03167) and LeakyReLU (Maas et al. 2013).

There is no agreed reference for this net; the DL4DS description fixes only "five blocks, each
two convs with BatchNorm then LeakyReLU, flatten, a fully connected layer with dropout, a
final fully connected layer". The layout followed here:

    5 blocks, widths 64, 64, 128, 128, 256; a block is
        (conv3x3, no bias -> BN -> LeakyReLU(0.01)) x 2 -> maxpool 2
    32x32 -> 1x1x256 -> flatten -> linear 128 -> LeakyReLU -> dropout (0.25) -> linear

The seed gives no widths, hidden width, dropout or slope, so these are cifarlab's choices: widths
that double every second block as VGG's double after pools, capped at 256 so the from-scratch
baseline stays small; a 128-wide hidden layer with dropout 0.25; LeakyReLU's slope 0.01, torch's
default. The LeakyReLU between the two linear layers keeps them from collapsing into one.
1,549,898 parameters for 10 classes.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from cifarlab.models.layers import (
    CifarModel,
    check_num_classes,
    conv3x3,
    dropout_layer,
    make_activation,
)
from cifarlab.models.registry import register_model

BLOCK_WIDTHS = (64, 64, 128, 128, 256)
HIDDEN = 128


def conv_block(
    in_channels: int, out_channels: int, negative_slope: float, activation: str = "leaky_relu"
) -> nn.Sequential:
    """Two conv-BN-activation layers, then a 2x2 max-pool."""
    layers: list[nn.Module] = []
    for channels_in in (in_channels, out_channels):
        layers += [
            conv3x3(channels_in, out_channels),
            nn.BatchNorm2d(out_channels),
            make_activation(activation, inplace=True, negative_slope=negative_slope),
        ]
    layers.append(nn.MaxPool2d(2))
    return nn.Sequential(*layers)


class ConvNet(CifarModel):
    """Conv blocks of `widths`, each halving the size, then a two-layer classifier."""

    def __init__(
        self,
        widths: Sequence[int] = BLOCK_WIDTHS,
        num_classes: int = 10,
        dropout: float = 0.25,
        negative_slope: float = 0.01,
        activation: str = "leaky_relu",
    ):
        super().__init__()
        blocks, in_channels = [], 3
        for width in widths:
            blocks.append(conv_block(in_channels, width, negative_slope, activation))
            in_channels = width
        self.features = nn.Sequential(*blocks)
        side = self.input_size[1] // 2 ** len(widths)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(in_channels * side * side, HIDDEN),
            make_activation(activation, inplace=True, negative_slope=negative_slope),
            dropout_layer(dropout),
            nn.Linear(HIDDEN, check_num_classes(num_classes)),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


@register_model
def convnet5(
    num_classes: int = 10, dropout: float = 0.25, negative_slope: float = 0.01, activation: str = "leaky_relu"
) -> ConvNet:
    """Five-block ConvNet (widths 64, 64, 128, 128, 256) with a dropout classifier; `activation` replaces LeakyReLU."""
    return ConvNet(BLOCK_WIDTHS, num_classes, dropout, negative_slope, activation)
