"""SENet-18: a pre-activation ResNet-18 whose blocks rescale their channels by squeeze-and-excitation.

Hu, Shen, Sun, "Squeeze-and-Excitation Networks", CVPR 2018 (arXiv:1709.01507).

Layout of kuangliu/pytorch-cifar: a 3x3 stride-1 stem conv to 64 channels with BN and ReLU (no
max-pool); four stages of two pre-activation blocks (64/128/256/512 channels, strides 1, 2, 2, 2)
as in `preact_resnet18`, where the projection shortcut is a plain 1x1 conv reading the
pre-activated input; before the add, squeeze-and-excitation scales the residual branch: global
average pool, 1x1 conv (with bias) to channels/16, ReLU, 1x1 conv (with bias) back, sigmoid. As in
that reference there is no final BN-ReLU before the pool. 11,260,354 parameters for 10 classes.
`activation` (relu, leaky_relu, elu, gelu, silu) replaces every ReLU, the one inside
squeeze-and-excitation included; the sigmoid gate stays.

`SqueezeExcitation` is shared with the EfficientNet and RegNet families.
"""

from __future__ import annotations

from torch import Tensor, nn

from cifarlab.models.layers import StemStagesHead, conv3x3, make_activation
from cifarlab.models.preact_resnet import preact_shortcut
from cifarlab.models.registry import register_variant
from cifarlab.models.resnet import resnet_stages

SE_REDUCTION = 16  # squeeze width = block width / 16, the paper's default ratio


class SqueezeExcitation(nn.Module):
    """Scale each channel by a gate in (0, 1) computed from the globally pooled input.

    The two fully connected layers are 1x1 convs with bias, so the pooled (N, C, 1, 1) tensor
    needs no reshaping; parameters equal those of two linear layers.
    """

    def __init__(self, channels: int, squeeze_channels: int, activation: str = "relu"):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.reduce = nn.Conv2d(channels, squeeze_channels, 1)
        self.act = make_activation(activation, inplace=True)
        self.expand = nn.Conv2d(squeeze_channels, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(self.expand(self.act(self.reduce(self.pool(x)))))


class SEPreActBlock(nn.Module):
    """BN-act-conv3x3 (stride), BN-act-conv3x3, squeeze-and-excitation, plus the shortcut."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1, activation: str = "relu"):
        super().__init__()
        self.out_channels = channels
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.shortcut = preact_shortcut(in_channels, channels, stride)
        self.se = SqueezeExcitation(channels, channels // SE_REDUCTION, activation)
        # Not in place: where the shortcut is the identity, the raw input is still needed after bn1.
        self.relu = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv2(self.relu(self.bn2(self.conv1(out))))
        return self.se(out) + shortcut


class SENet(StemStagesHead):
    """SENet with the CIFAR stem (3x3 conv, BN, activation) and stages of pre-activation SE blocks."""

    def __init__(
        self, blocks_per_stage: tuple[int, ...], num_classes: int = 10, dropout: float = 0.0, activation: str = "relu"
    ):
        stem = nn.Sequential(conv3x3(3, 64), nn.BatchNorm2d(64), make_activation(activation, inplace=True))
        stages, width = resnet_stages(SEPreActBlock, blocks_per_stage, activation)
        super().__init__(stem, stages, width, num_classes, dropout)


register_variant("senet18", SENet, "SENet-18: pre-activation SE blocks [2, 2, 2, 2].", blocks_per_stage=(2, 2, 2, 2))
