"""Pieces shared by the CIFAR zoo families: activations, convolutions, residual blocks and stages, the head.

Every zoo model keeps the CIFAR layout of its reference: a stride-1 stem with no max-pool,
so a 32x32 image reaches the last stage at 4x4 (or 8x8 for the three-stage nets), and a
global average pool before the classifier. The pool is adaptive, which equals the fixed
4x4 / 8x8 pool of the references at 32x32 and also accepts other sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Optional

from torch import Tensor, nn

from cifarlab.errors import CifarlabError
from cifarlab.models.input_config import CIFAR_INPUT_SIZE, InputConfig

ACTIVATIONS: dict[str, Callable[[bool, float], nn.Module]] = {
    "relu": lambda inplace, slope: nn.ReLU(inplace=inplace),
    "leaky_relu": lambda inplace, slope: nn.LeakyReLU(slope, inplace=inplace),
    "elu": lambda inplace, slope: nn.ELU(inplace=inplace),
    "gelu": lambda inplace, slope: nn.GELU(),  # no in-place form exists
    "silu": lambda inplace, slope: nn.SiLU(inplace=inplace),
}


def make_activation(name: str, inplace: bool = False, negative_slope: float = 0.01) -> nn.Module:
    """The activation layer called `name` (relu, leaky_relu, elu, gelu, silu); unknown names list the choices.

    `negative_slope` is the slope of leaky_relu below zero; the other activations ignore it.
    """
    if name not in ACTIVATIONS:
        raise CifarlabError(
            f"unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)} "
            f"(model.options.activation=gelu, for example)."
        )
    return ACTIVATIONS[name](inplace, negative_slope)


class CifarModel(nn.Module):
    """Base of every zoo model: 32x32 input, normalised by the training data's own statistics."""

    input_size: tuple[int, int, int] = CIFAR_INPUT_SIZE
    input_config: InputConfig = InputConfig()


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution with padding 1 (size kept at stride 1)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=bias)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """1x1 convolution: channel mixing, or a strided projection shortcut."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias)


def conv_bn_act(
    in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, activation: str = "relu"
) -> nn.Sequential:
    """Conv (no bias, BN supplies the shift) -> BatchNorm -> activation."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        make_activation(activation, inplace=True),
    )


def projection(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Shortcut of a post-activation block: identity when shapes agree, else 1x1 conv + BN."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Post-activation residual block: conv-BN-act-conv-BN, add the shortcut, act (He et al. 2015)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1, activation: str = "relu"):
        super().__init__()
        self.out_channels = channels
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = projection(in_channels, channels, stride)
        self.relu = make_activation(activation, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class Bottleneck(nn.Module):
    """Post-activation bottleneck: 1x1 reduce -> 3x3 (stride, `groups`) -> 1x1 expand, each with BN; act after the add.

    ResNet-50 uses it with one group and `out_channels` = 4x `mid_channels`; ResNeXt with
    `groups` = cardinality and `out_channels` = 2x `mid_channels`.
    """

    def __init__(
        self, in_channels: int, mid_channels: int, out_channels: int, stride: int = 1, groups: int = 1,
        activation: str = "relu", shortcut: Optional[Callable[[], nn.Module]] = None,
    ):
        super().__init__()
        self.out_channels = out_channels
        self.conv1 = conv1x1(in_channels, mid_channels)
        self.bn1 = nn.BatchNorm2d(mid_channels)
        self.conv2 = conv3x3(mid_channels, mid_channels, stride, groups=groups)
        self.bn2 = nn.BatchNorm2d(mid_channels)
        self.conv3 = conv1x1(mid_channels, out_channels)
        self.bn3 = nn.BatchNorm2d(out_channels)
        # A factory, called here, so a family's own shortcut is initialised in the same order (and from the
        # same random draws) as this one would be.
        self.shortcut = shortcut() if shortcut is not None else projection(in_channels, out_channels, stride)
        self.relu = make_activation(activation, inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + self.shortcut(x))


BlockFactory = Callable[[int, int, int], nn.Module]


def residual_stages(
    make_block: BlockFactory, in_channels: int, widths: Sequence[int], strides: Sequence[int],
    blocks_per_stage: Sequence[int],
) -> tuple[nn.Sequential, int]:
    """Stages of `make_block(in_channels, width, stride)` blocks; returns them and the channels they end with.

    The first block of a stage carries the stride; every block reports its `out_channels`.
    """
    stages = []
    for width, stride, count in zip(widths, strides, blocks_per_stage):
        blocks = []
        for index in range(count):
            block = make_block(in_channels, width, stride if index == 0 else 1)
            in_channels = block.out_channels
            blocks.append(block)
        stages.append(nn.Sequential(*blocks))
    return nn.Sequential(*stages), in_channels


def check_num_classes(num_classes: int) -> int:
    """A positive class count, or an error saying what to pass."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise CifarlabError(
            f"num_classes must be a positive integer, got {num_classes!r}; use 10 for CIFAR-10 or 100 for CIFAR-100."
        )
    return num_classes


def dropout_layer(p: float, name: str = "dropout") -> nn.Module:
    """Dropout with probability `p`, or Identity at 0; a bad `p` is an error naming the option."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
        raise CifarlabError(
            f"{name} must be a number in [0, 1), got {p!r}; pass for example {name}=0.2, or 0 for none."
        )
    return nn.Dropout(p) if p > 0 else nn.Identity()


class ClassifierHead(nn.Module):
    """Global average pool -> flatten -> optional dropout -> linear layer giving logits."""

    def __init__(self, in_features: int, num_classes: int, dropout: float = 0.0):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dropout = dropout_layer(dropout)
        self.linear = nn.Linear(in_features, check_num_classes(num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.dropout(self.pool(x).flatten(1)))


class StemStagesHead(CifarModel):
    """The residual-network shape: stem -> stages -> pooled linear head (ResNet, PreAct-ResNet, ResNeXt, DPN)."""

    def __init__(self, stem: nn.Module, stages: nn.Module, features: int, num_classes: int, dropout: float):
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.head = ClassifierHead(features, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.stages(self.stem(x)))
