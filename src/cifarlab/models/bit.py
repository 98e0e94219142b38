"""Big Transfer (BiT) ResNet-V2: weight-standardised convs, GroupNorm, pre-activation bottlenecks.

The network computes the same function as the official BiT PyTorch model (ResNetV2 in
google-research/big_transfer), so the official `.npz` checkpoints load into it unchanged.
Module names follow the official ones (root / body.blockN.unitMM / head) because the
checkpoint keys are spelled in those words.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.models.input_config import InputConfig
from cifarlab.models.registry import register_model

# Units per stage and width factor of every published BiT size.
ARCHITECTURES: dict[str, tuple[tuple[int, int, int, int], int]] = {
    "r50x1": ((3, 4, 6, 3), 1),
    "r50x3": ((3, 4, 6, 3), 3),
    "r101x1": ((3, 4, 23, 3), 1),
    "r101x3": ((3, 4, 23, 3), 3),
    "r152x2": ((3, 8, 36, 3), 2),
    "r152x4": ((3, 8, 36, 3), 4),
}

GROUPS = 32
# Weight-standardisation epsilon of the official PyTorch port; tiny, so that a standardised
# kernel is exactly zero-mean unit-variance even for near-constant filters.
WS_EPS = 1e-10


def standardize_weight(weight: torch.Tensor, eps: float = WS_EPS) -> torch.Tensor:
    """Each output channel's kernel shifted to mean 0 and scaled to variance 1 (biased variance, plus `eps`)."""
    # Batch norm over a (1, out, fan-in) view computes exactly these per-channel statistics,
    # in one fused kernel: faster, forward and backward, than var_mean and two broadcasts.
    flat = weight.reshape(1, weight.shape[0], -1)
    return F.batch_norm(flat, None, None, training=True, momentum=0.0, eps=eps).reshape_as(weight)


class StdConv2d(nn.Conv2d):
    """Conv2d whose kernel is standardised per output channel (biased variance) on every call."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = standardize_weight(self.weight)
        return F.conv2d(x, weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1) -> StdConv2d:
    return StdConv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, bias=False)


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck: GN-ReLU-conv1x1, GN-ReLU-conv3x3 (strided), GN-ReLU-conv1x1.

    The projection shortcut, when the shape changes, reads the first pre-activation
    (not the raw input), as in the ResNet-V2 paper and the official BiT code.
    """

    def __init__(self, cin: int, cout: int, cmid: int, stride: int = 1):
        super().__init__()
        self.gn1 = nn.GroupNorm(GROUPS, cin)
        self.conv1 = _conv(cin, cmid, 1)
        self.gn2 = nn.GroupNorm(GROUPS, cmid)
        self.conv2 = _conv(cmid, cmid, 3, stride)
        self.gn3 = nn.GroupNorm(GROUPS, cmid)
        self.conv3 = _conv(cmid, cout, 1)
        self.downsample = _conv(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.gn1(x))
        shortcut = x if self.downsample is None else self.downsample(out)
        out = self.conv1(out)
        out = self.conv2(F.relu(self.gn2(out)))
        out = self.conv3(F.relu(self.gn3(out)))
        return out + shortcut


def _stage(cin: int, cout: int, cmid: int, units: int, stride: int) -> nn.Sequential:
    layers = [("unit01", PreActBottleneck(cin, cout, cmid, stride))]
    layers += [(f"unit{i:02d}", PreActBottleneck(cout, cout, cmid)) for i in range(2, units + 1)]
    return nn.Sequential(OrderedDict(layers))


class ResNetV2(nn.Module):
    """BiT ResNet-V2; `width` multiplies every channel count (64 in the root, 256..2048 out of stages)."""

    # BiT feeds images scaled to [-1, 1], resized to 160 and cropped to 128 (HyperRule, small images).
    input_config = InputConfig(mean=(0.5,) * 3, std=(0.5,) * 3, input_size=(3, 128, 128), resize=160, crop=128)

    def __init__(self, depths: tuple[int, ...], width: float, num_classes: int, root_type: str = "bit"):
        super().__init__()
        self.depths, self.width, self.root_type = tuple(depths), width, root_type
        root = _channels(64, width)
        if root_type == "bit":
            self.root = nn.Sequential(OrderedDict([
                ("conv", StdConv2d(3, root, 7, stride=2, padding=3, bias=False)),
                # Zero padding then an unpadded pool: not the same as MaxPool2d(padding=1), which pads
                # with -inf; the root has no ReLU, so negative values meet the padded zeros.
                ("pad", nn.ConstantPad2d(1, 0.0)),
                ("pool", nn.MaxPool2d(kernel_size=3, stride=2)),
            ]))
        elif root_type == "cifar":
            # 32x32 input: a 3x3 stride-1 root and no pooling, as the CIFAR zoo; same checkpoint key.
            self.root = nn.Sequential(OrderedDict([("conv", StdConv2d(3, root, 3, stride=1, padding=1, bias=False))]))
            self.input_config = InputConfig(mean=(0.5,) * 3, std=(0.5,) * 3, input_size=(3, 32, 32))
        else:
            raise CifarlabError(f"BiT root must be 'bit' or 'cifar', got {root_type!r}")
        stages, cin = [], root
        for i, units in enumerate(self.depths):
            cout, cmid = _channels(256 * 2**i, width), _channels(64 * 2**i, width)
            stages.append((f"block{i + 1}", _stage(cin, cout, cmid, units, 1 if i == 0 else 2)))
            cin = cout
        self.body = nn.Sequential(OrderedDict(stages))
        self.head = nn.Sequential(OrderedDict([
            ("gn", nn.GroupNorm(GROUPS, cin)),
            ("relu", nn.ReLU()),
            ("avg", nn.AdaptiveAvgPool2d(1)),
            ("conv", nn.Conv2d(cin, num_classes, kernel_size=1, bias=True)),
        ]))

    @property
    def input_size(self) -> tuple[int, int, int]:
        """(channels, height, width) the network is built for: 128x128 with the BiT root, 32x32 with the CIFAR one."""
        return self.input_config.input_size

    @property
    def preprocessing(self) -> dict:
        """The input config as the mean/std/resize/crop mapping older callers read."""
        config = self.input_config
        return {"mean": config.mean, "std": config.std, "resize": config.resize, "crop": config.crop}

    @property
    def arch(self) -> str | None:
        """The published size this network has (`r50x1` ...), None for a reduced test network."""
        for name, shape in ARCHITECTURES.items():
            if shape == (self.depths, self.width) and self.root_type == "bit":
                return name
        return None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.root(x))).flatten(1)


def _channels(base: int, width: float) -> int:
    channels = base * width
    if channels != int(channels) or int(channels) % GROUPS:
        raise CifarlabError(
            f"BiT width {width} gives {channels} channels, not a multiple of {GROUPS} GroupNorm groups; "
            f"use a width that makes 64*width a multiple of {GROUPS} (0.5, 1, 2, 3, 4)."
        )
    return int(channels)


@register_model
def bit_resnetv2(num_classes: int = 10, *, depths=(3, 4, 6, 3), width: float = 1, root: str = "bit",
                 weights: str | None = None, zero_head: bool = True) -> ResNetV2:
    """Build a BiT ResNet-V2 of any depth/width; `weights` is an official name or an `.npz` path.

    `root="cifar"` gives a 3x3 stride-1 root without pooling for 32x32 input (cifarlab's own
    upstream models); the official checkpoints all use the BiT root.

    With weights whose head has another number of classes, the head is replaced: zero-initialised
    when `zero_head` (BiT's choice), PyTorch's default initialisation otherwise.
    """
    model = ResNetV2(tuple(depths), width, num_classes, root)
    if weights is not None:
        from cifarlab.models.bit_weights import load_weights

        load_weights(model, weights, zero_head=zero_head)
    return model


def _register(arch: str) -> None:
    depths, width = ARCHITECTURES[arch]

    def build(num_classes: int = 10, weights: str | None = None, zero_head: bool = True) -> ResNetV2:
        return bit_resnetv2(num_classes, depths=depths, width=width, weights=weights, zero_head=zero_head)

    build.__name__ = build.__qualname__ = f"bit_{arch}"
    build.__doc__ = f"BiT ResNet-V2 R{arch[1:]} (units {depths}, width x{width}); weights: BiT-S/M-R{arch[1:]}."
    register_model(build)


for _arch in ARCHITECTURES:
    _register(_arch)
