"""Deep Layer Aggregation (DLA) and its simplified variant for 32x32 images.

Yu, Wang, Shelhamer, Darrell, "Deep Layer Aggregation", CVPR 2018 (arXiv:1707.06484).

Layout of the common pytorch-cifar reference: three 3x3 conv-BN-ReLU layers at stride 1
(16, 16, 32 channels; no max-pool), then aggregation trees of post-activation basic blocks at
64, 128, 256 and 512 channels (levels 1, 2, 2, 1; strides 1, 2, 2, 2), global average pool and
a linear layer. A root node concatenates its inputs and applies 1x1 conv-BN-ReLU. `activation`
(relu, leaky_relu, elu, gelu, silu) replaces every ReLU.

- `dla`: hierarchical deep aggregation. A tree of level L > 1 collects the outputs of a
  `prev_root` block on its input, of its chained subtrees of levels L-1 ... 1 and of two more
  blocks, and aggregates all L + 2 of them in one root. 16,291,386 parameters for 10 classes.
- `simple_dla`: each tree is two subtrees in series whose two outputs meet in a root.
  15,142,970 parameters for 10 classes.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from cifarlab.models.layers import BasicBlock, CifarModel, ClassifierHead, conv_bn_act
from cifarlab.models.registry import register_variant


class Root(nn.Module):
    """Concatenate the inputs, then 1x1 conv-BN-activation."""

    def __init__(self, in_channels: int, out_channels: int, activation: str = "relu"):
        super().__init__()
        self.aggregate = conv_bn_act(in_channels, out_channels, kernel_size=1, activation=activation)

    def forward(self, xs: list[Tensor]) -> Tensor:
        return self.aggregate(torch.cat(xs, 1))


class Tree(nn.Module):
    """Hierarchical aggregation tree of DLA (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, level: int = 1, stride: int = 1, activation: str = "relu"):
        super().__init__()
        self.level = level
        if level == 1:
            self.root = Root(2 * out_channels, out_channels, activation)
            self.left_node = BasicBlock(in_channels, out_channels, stride, activation)
        else:
            self.root = Root((level + 2) * out_channels, out_channels, activation)
            self.prev_root = BasicBlock(in_channels, out_channels, stride, activation)
            self.subtrees = nn.ModuleList()
            for sub_level in reversed(range(1, level)):
                self.subtrees.append(Tree(in_channels, out_channels, sub_level, stride, activation))
                # Subtrees are chained: the next one reads this one's output.
                in_channels, stride = out_channels, 1
            self.left_node = BasicBlock(out_channels, out_channels, activation=activation)
        self.right_node = BasicBlock(out_channels, out_channels, activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        xs = []
        if self.level > 1:
            xs.append(self.prev_root(x))
            for subtree in self.subtrees:
                x = subtree(x)
                xs.append(x)
        x = self.left_node(x)
        xs.append(x)
        xs.append(self.right_node(x))
        return self.root(xs)


class SimpleTree(nn.Module):
    """Two subtrees (or two blocks at level 1) in series, their outputs joined by a root."""

    def __init__(self, in_channels: int, out_channels: int, level: int = 1, stride: int = 1, activation: str = "relu"):
        super().__init__()
        self.root = Root(2 * out_channels, out_channels, activation)
        if level == 1:
            self.left_tree: nn.Module = BasicBlock(in_channels, out_channels, stride, activation)
            self.right_tree: nn.Module = BasicBlock(out_channels, out_channels, activation=activation)
        else:
            self.left_tree = SimpleTree(in_channels, out_channels, level - 1, stride, activation)
            self.right_tree = SimpleTree(out_channels, out_channels, level - 1, activation=activation)

    def forward(self, x: Tensor) -> Tensor:
        left = self.left_tree(x)
        return self.root([left, self.right_tree(left)])


class DLA(CifarModel):
    """DLA body shared by both variants; `tree` picks the aggregation."""

    def __init__(self, tree: type[nn.Module], num_classes: int = 10, dropout: float = 0.0, activation: str = "relu"):
        super().__init__()
        self.base = nn.Sequential(
            conv_bn_act(3, 16, activation=activation),
            conv_bn_act(16, 16, activation=activation),
            conv_bn_act(16, 32, activation=activation),
        )
        self.trees = nn.Sequential(
            tree(32, 64, level=1, stride=1, activation=activation),
            tree(64, 128, level=2, stride=2, activation=activation),
            tree(128, 256, level=2, stride=2, activation=activation),
            tree(256, 512, level=1, stride=2, activation=activation),
        )
        self.head = ClassifierHead(512, num_classes, dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.trees(self.base(x)))


register_variant("dla", DLA, "DLA with hierarchical aggregation (prev_root + chained subtrees).", tree=Tree)
register_variant("simple_dla", DLA, "Simplified DLA: binary trees of two subtrees and one root.", tree=SimpleTree)
