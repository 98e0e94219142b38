"""VGG-A for the BatchNorm study: VGG-11 convolutions and a 512-512-classes classifier, with and without BN.

Santurkar, Tsipras, Ilyas, Madry, "How Does Batch Normalization Help Optimization?", NeurIPS 2018
(arXiv:1805.11604) studied the loss landscape of VGG-A (configuration A of Simonyan and Zisserman,
arXiv:1409.1556) with and without BatchNorm, the study seeds/002 ("BatchNorm") repeats. This is a
CIFAR form of that network: the eight VGG-11 3x3 convolutions (64, pool, 128, pool, 256 x2, pool,
512 x2, pool, 512 x2, pool) take 32x32 to 1x1x512, then Linear 512-512, ReLU, Linear 512-512, ReLU,
Linear 512-classes: configuration A's three-layer classifier, its 4096 hidden units narrowed to the
512 features a 32x32 image leaves (cifarlab's choice; the seed does not give the network).
`vgg_a` has 9,750,922 parameters for 10 classes; `vgg_a_bn` puts BatchNorm between every
convolution and its activation (9,756,426). Unlike `vgg11` (one linear layer), the three-layer
classifier keeps the optimisation problem of the study.

`width_multiplier` scales every width (convolutions and the hidden classifier layers) for
CPU-sized studies; `activation` replaces every ReLU.
"""

from __future__ import annotations

from torch import Tensor, nn

from cifarlab.errors import CifarlabError
from cifarlab.models.layers import CifarModel, check_num_classes, make_activation
from cifarlab.models.registry import register_model
from cifarlab.models.vgg import CONFIGS, vgg_features

HIDDEN = 512


def _scaled(width: int, multiplier: float) -> int:
    return max(1, round(width * multiplier))


class VGGA(CifarModel):
    """VGG-11 features (optionally with BatchNorm) and a three-layer classifier."""

    def __init__(self, batch_norm: bool, num_classes: int = 10, width_multiplier: float = 1.0,
                 activation: str = "relu"):
        super().__init__()
        if not width_multiplier > 0:
            raise CifarlabError(f"width_multiplier must be positive (got {width_multiplier}); "
                                "use model.options.width_multiplier=0.25 for a quarter-width net")
        config = [item if isinstance(item, str) else _scaled(item, width_multiplier) for item in CONFIGS["vgg11"]]
        self.features = vgg_features(config, batch_norm, activation)
        features, hidden = config[-2], _scaled(HIDDEN, width_multiplier)
        self.classifier = nn.Sequential(
            nn.Linear(features, hidden), make_activation(activation, inplace=True),
            nn.Linear(hidden, hidden), make_activation(activation, inplace=True),
            nn.Linear(hidden, check_num_classes(num_classes)),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


@register_model
def vgg_a(num_classes: int = 10, width_multiplier: float = 1.0, activation: str = "relu") -> VGGA:
    """VGG-A without BatchNorm (9,750,922 parameters for 10 classes): the BatchNorm study's plain net."""
    return VGGA(False, num_classes, width_multiplier, activation)


@register_model
def vgg_a_bn(num_classes: int = 10, width_multiplier: float = 1.0, activation: str = "relu") -> VGGA:
    """VGG-A with BatchNorm after every convolution: the BatchNorm study's normalised net."""
    return VGGA(True, num_classes, width_multiplier, activation)
