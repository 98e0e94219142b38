"""Pre-activation ResNet-18/34/50/101/152 for 32x32 images.

He, Zhang, Ren, Sun, "Identity Mappings in Deep Residual Networks", ECCV 2016 (arXiv:1603.05027).

Layout of the common pytorch-cifar reference: a bare 3x3 stride-1 stem conv (64 channels, no BN,
no max-pool); blocks run BN -> ReLU -> conv, and a projection shortcut (a plain 1x1 conv) reads
the pre-activated input; stages of 64/128/256/512 channels, strides 1, 2, 2, 2. As in that
reference there is no final BN-ReLU before the pool, which keeps its parameter counts:
for 10 classes 11,171,146 (18), 21,279,306 (34), 23,509,066 (50), 42,501,194 (101) and
58,144,842 (152). `activation` (relu, leaky_relu, elu, gelu, silu) replaces every ReLU.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor, nn

from cifarlab.models.layers import StemStagesHead, conv1x1, conv3x3, make_activation
from cifarlab.models.registry import register_variant
from cifarlab.models.resnet import BLOCKS_PER_STAGE, EXPANSION, resnet_stages


def preact_shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Module | None:
    """1x1 conv projection where the shape changes; None means the raw input is added."""
    if stride == 1 and in_channels == out_channels:
        return None
    return conv1x1(in_channels, out_channels, stride)


class PreActUnit(nn.Module):
    """Pre-activation residual unit: BN-act before each of its convs (`conv1`, `conv2`, ...), plus the shortcut.

    The projection shortcut, where the shape changes, reads the first pre-activation.
    """

    def __init__(self, convs: Sequence[nn.Conv2d], stride: int, activation: str):
        super().__init__()
        self.out_channels = convs[-1].out_channels
        for index, conv in enumerate(convs, start=1):
            setattr(self, f"bn{index}", nn.BatchNorm2d(conv.in_channels))
            setattr(self, f"conv{index}", conv)
        self.depth = len(convs)
        self.shortcut = preact_shortcut(convs[0].in_channels, self.out_channels, stride)
        self.relu = make_activation(activation)

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(x))
        shortcut = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        for index in range(2, self.depth + 1):
            out = getattr(self, f"conv{index}")(self.relu(getattr(self, f"bn{index}")(out)))
        return out + shortcut


def preact_block(in_channels: int, channels: int, stride: int = 1, activation: str = "relu") -> PreActUnit:
    """BN-act-conv3x3 (stride), BN-act-conv3x3, plus the shortcut."""
    convs = [conv3x3(in_channels, channels, stride), conv3x3(channels, channels)]
    return PreActUnit(convs, stride, activation)


def preact_bottleneck(in_channels: int, channels: int, stride: int = 1, activation: str = "relu") -> PreActUnit:
    """BN-act-conv1x1, BN-act-conv3x3 (stride), BN-act-conv1x1 expanding by 4, plus the shortcut."""
    convs = [conv1x1(in_channels, channels), conv3x3(channels, channels, stride), conv1x1(channels, EXPANSION * channels)]
    return PreActUnit(convs, stride, activation)


class PreActResNet(StemStagesHead):
    """Pre-activation ResNet with the CIFAR stem (a bare 3x3 conv)."""

    def __init__(
        self, block: Callable[..., nn.Module], blocks_per_stage: Sequence[int], num_classes: int = 10, dropout: float = 0.0,
        activation: str = "relu",
    ):
        stem = conv3x3(3, 64)  # built before the stages, so one seed gives the reference's initial weights
        stages, width = resnet_stages(block, blocks_per_stage, activation)
        super().__init__(stem, stages, width, num_classes, dropout)


for _depth, _blocks in BLOCKS_PER_STAGE.items():
    _deep = _depth >= 50
    register_variant(
        f"preact_resnet{_depth}", PreActResNet,
        f"PreAct-ResNet-{_depth}: {'bottlenecks' if _deep else 'blocks'} {list(_blocks)}.",
        block=preact_bottleneck if _deep else preact_block, blocks_per_stage=_blocks,
    )
