"""LeNet-5 for 32x32 colour images.

LeCun, Bottou, Bengio, Haffner, "Gradient-Based Learning Applied to Document Recognition",
Proc. IEEE 1998.

Layout of the common pytorch-cifar reference: conv5x5 6 -> ReLU -> maxpool 2 -> conv5x5 16 ->
ReLU -> maxpool 2 -> linear 120 -> ReLU -> linear 84 -> ReLU -> linear. The convs are unpadded,
so 32x32 reaches 5x5x16 before the linear layers. 62,006 parameters for 10 classes (the
reference's own table prints 62,007, an off-by-one of its counting tool: the layers add up to
456 + 2,416 + 48,120 + 10,164 + 850).
"""

from __future__ import annotations

from torch import Tensor, nn

from cifarlab.models.layers import (
    CifarModel,
    check_num_classes,
    dropout_layer,
    make_activation,
)
from cifarlab.models.registry import register_model


class LeNet(CifarModel):
    """LeNet-5 with ReLU (or `activation`) and max-pooling."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()

        def act() -> nn.Module:
            return make_activation(activation, inplace=True)

        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 5), act(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), act(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120), act(),
            nn.Linear(120, 84), act(),
            dropout_layer(dropout),
            nn.Linear(84, check_num_classes(num_classes)),
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x))


@register_model
def lenet(num_classes: int = 10, dropout: float = 0.0, activation: str = "relu") -> LeNet:
    """LeNet-5 (62,006 parameters for 10 classes); `activation`: relu, leaky_relu, elu, gelu or silu."""
    return LeNet(num_classes, dropout, activation)
