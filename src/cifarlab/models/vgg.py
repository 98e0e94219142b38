"""VGG-11/13/16/19 for 32x32 images, with BatchNorm (`vgg*_bn`) and without (`vgg*`).

Simonyan, Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition",
ICLR 2015 (arXiv:1409.1556). BatchNorm: Ioffe, Szegedy, ICML 2015 (arXiv:1502.03167).
VGG-11 is the paper's configuration A ("VGG-A"), the net of the BatchNorm study.

Layout of the common pytorch-cifar reference: the paper's conv configurations A, B, D, E
(3x3 convs with bias, padding 1, ReLU; 2x2 max-pools), whose five pools take 32x32 down to
1x1x512, then a single linear layer (no 4096-wide fully connected layers). The `_bn` nets put
BatchNorm between each conv and its ReLU: 9,231,114 / 9,416,010 / 14,728,266 / 20,040,522
parameters for 10 classes. The plain nets are the same layout with the BatchNorm layers
removed (each conv keeps its bias): 9,225,610 / 9,410,122 / 14,719,818 / 20,029,514.
`activation` (relu, leaky_relu, elu, gelu, silu) replaces every ReLU.
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
from cifarlab.models.registry import register_variant

POOL = "M"
CONFIGS: dict[str, tuple[int | str, ...]] = {
    "vgg11": (64, POOL, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    "vgg13": (64, 64, POOL, 128, 128, POOL, 256, 256, POOL, 512, 512, POOL, 512, 512, POOL),
    "vgg16": (64, 64, POOL, 128, 128, POOL, 256, 256, 256, POOL, 512, 512, 512, POOL, 512, 512, 512, POOL),
    "vgg19": (
        64, 64, POOL, 128, 128, POOL, 256, 256, 256, 256, POOL,
        512, 512, 512, 512, POOL, 512, 512, 512, 512, POOL,
    ),
}  # fmt: skip


def vgg_features(config: Sequence[int | str], batch_norm: bool, activation: str = "relu") -> nn.Sequential:
    """Conv(-BN)-activation layers and max-pools following `config`."""
    layers: list[nn.Module] = []
    in_channels = 3
    for item in config:
        if item == POOL:
            layers.append(nn.MaxPool2d(2))
            continue
        layers.append(conv3x3(in_channels, int(item), bias=True))
        if batch_norm:
            layers.append(nn.BatchNorm2d(int(item)))
        layers.append(make_activation(activation, inplace=True))
        in_channels = int(item)
    return nn.Sequential(*layers)


class VGG(CifarModel):
    """VGG feature stack and a linear classifier on the flattened 1x1x512 map."""

    def __init__(
        self, config: Sequence[int | str], batch_norm: bool, num_classes: int = 10, dropout: float = 0.0,
        activation: str = "relu",
    ):
        super().__init__()
        self.features = vgg_features(config, batch_norm, activation)
        self.dropout = dropout_layer(dropout)
        self.classifier = nn.Linear(512, check_num_classes(num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.dropout(self.features(x).flatten(1)))


for _name, _config in CONFIGS.items():
    register_variant(_name, VGG, f"{_name.upper()} without BatchNorm.", config=_config, batch_norm=False)
    register_variant(f"{_name}_bn", VGG, f"{_name.upper()} with BatchNorm.", config=_config, batch_norm=True)
