"""Pieces shared by the CIFAR zoo families: convolutions, the post-activation basic block, the head.

Every zoo model keeps the CIFAR layout of its reference: a stride-1 stem with no max-pool,
so a 32x32 image reaches the last stage at 4x4 (or 8x8 for the three-stage nets), and a
global average pool before the classifier. The pool is adaptive, which equals the fixed
4x4 / 8x8 pool of the references at 32x32 and also accepts other sizes.
"""

from __future__ import annotations

from torch import Tensor, nn

from cifarlab.errors import CifarlabError

CIFAR_INPUT_SIZE = (3, 32, 32)


class CifarModel(nn.Module):
    """Base of every zoo model: records the input size it expects as `input_size` (C, H, W)."""

    input_size: tuple[int, int, int] = CIFAR_INPUT_SIZE


def conv3x3(in_channels: int, out_channels: int, stride: int = 1, groups: int = 1, bias: bool = False) -> nn.Conv2d:
    """3x3 convolution with padding 1 (size kept at stride 1)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, groups=groups, bias=bias)


def conv1x1(in_channels: int, out_channels: int, stride: int = 1, bias: bool = False) -> nn.Conv2d:
    """1x1 convolution: channel mixing, or a strided projection shortcut."""
    return nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=bias)


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Sequential:
    """Conv (no bias, BN supplies the shift) -> BatchNorm -> ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def projection(in_channels: int, out_channels: int, stride: int) -> nn.Module:
    """Shortcut of a post-activation block: identity when shapes agree, else 1x1 conv + BN."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))


class BasicBlock(nn.Module):
    """Post-activation residual block: conv-BN-ReLU-conv-BN, add the shortcut, ReLU (He et al. 2015)."""

    expansion = 1

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.shortcut = projection(in_channels, channels, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


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
