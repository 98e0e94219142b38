"""ResNet-9 in the layout of the fast-CIFAR "DAWNBench" nets, as the ERA seed's problem statement lays it out.

He, Zhang, Ren, Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv:1512.03385);
the nine-layer layout follows Page, "How to Train Your ResNet" (myrtle.ai, 2018).

    prep    conv3x3 64 -> BN -> ReLU
    layer1  X = conv3x3 128 -> maxpool 2 -> BN -> ReLU;  X + (conv-BN-ReLU -> conv-BN-ReLU at 128)(X)
    layer2  conv3x3 256 -> maxpool 2 -> BN -> ReLU
    layer3  X = conv3x3 512 -> maxpool 2 -> BN -> ReLU;  X + (conv-BN-ReLU -> conv-BN-ReLU at 512)(X)
    head    maxpool 4 -> flatten -> linear

Convs have no bias (BN supplies it): 6,573,130 parameters for 10 classes (the seed reports
about 6573k). The statement ends in a SoftMax; the model returns logits instead, because the
cross-entropy loss applies log-softmax itself.
"""

from __future__ import annotations

from torch import Tensor, nn

from cifarlab.models.layers import (
    CifarModel,
    check_num_classes,
    conv3x3,
    conv_bn_act,
    dropout_layer,
    make_activation,
)
from cifarlab.models.registry import register_model


def conv_pool_bn_act(in_channels: int, out_channels: int, activation: str = "relu") -> nn.Sequential:
    """conv3x3 -> maxpool 2 -> BN -> activation: halves the size after the conv."""
    return nn.Sequential(
        conv3x3(in_channels, out_channels),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(out_channels),
        make_activation(activation, inplace=True),
    )


class ResidualStage(nn.Module):
    """X = conv-pool-BN-ReLU(x); returns X + conv-BN-ReLU(conv-BN-ReLU(X))."""

    def __init__(self, in_channels: int, out_channels: int, activation: str = "relu"):
        super().__init__()
        self.downsample = conv_pool_bn_act(in_channels, out_channels, activation)
        self.residual = nn.Sequential(
            conv_bn_act(out_channels, out_channels, activation=activation),
            conv_bn_act(out_channels, out_channels, activation=activation),
        )

    def forward(self, x: Tensor) -> Tensor:
        x = self.downsample(x)
        return x + self.residual(x)


class ResNet9(CifarModel):
    """The ERA ResNet-9; returns logits."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.prep = conv_bn_act(3, 64, activation=activation)
        self.layer1 = ResidualStage(64, 128, activation)
        self.layer2 = conv_pool_bn_act(128, 256, activation)
        self.layer3 = ResidualStage(256, 512, activation)
        self.pool = nn.MaxPool2d(4)
        self.dropout = dropout_layer(dropout)
        self.linear = nn.Linear(512, check_num_classes(num_classes))

    def forward(self, x: Tensor) -> Tensor:
        x = self.layer3(self.layer2(self.layer1(self.prep(x))))
        return self.linear(self.dropout(self.pool(x).flatten(1)))


@register_model
def resnet9(num_classes: int = 10, dropout: float = 0.0, activation: str = "relu") -> ResNet9:
    """ResNet-9 (ERA layout, logits out); `activation` replaces every ReLU."""
    return ResNet9(num_classes, dropout, activation)
