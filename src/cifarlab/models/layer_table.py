"""Per-layer table of one model (layer, output shape, parameters, multiply-adds, trainable), as torchinfo prints it.

Which counts come from where, and why:
- layers, output shapes, parameters and the trainable flag come from torchinfo's `summary`; its
  total parameter count equals `sum(p.numel() for p in model.parameters())` (checked on LeNet,
  ResNet-18, VGG-11, VGG-11-BN, DenseNet-CIFAR and the kuangliu/pytorch-cifar families);
- multiply-adds come from `torch.utils.flop_counter.FlopCounterMode`, the count behind
  `cifarlab models --macs` (summary.multiply_adds), split by module. torchinfo's own mult-adds are
  not used: it also counts every bias addition and each BatchNorm parameter as a multiply-add, so
  its totals run above that count (ResNet-18: 555,432,330 against 555,422,720; LeNet: 658,238
  against the hand count 651,720), and one model would have two different sizes.
The model is traced on the meta device, so a table costs no arithmetic whatever the model's size.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cifarlab.errors import CifarlabError
from cifarlab.models.catalogue import create

INSTALL = "pip install 'cifarlab[tune]'"
UNLIMITED_DEPTH = 1_000  # torchinfo stops listing below its `depth`; no model nests this deep


@dataclass(frozen=True)
class LayerRow:
    """One call of one module in the forward pass; None is shown as `--`, as torchinfo does."""

    label: str  # class, attribute name and depth-index: `Conv2d (conv1): 3-1`
    depth: int  # 0 for the model itself
    output_shape: tuple[int, ...] | None
    params: int | None  # the module's own parameters (a container: those none of its listed children hold)
    macs: int | None  # multiply-adds of the module's own operations, not its children's
    trainable: str  # True, False, Partial or -- (no parameters), torchinfo's words
    repeated: bool = False  # a module called again: its parameters and multiply-adds are on its first row


@dataclass(frozen=True)
class LayerTable:
    """The rows of one model and its totals; `total_macs` equals `summary.multiply_adds` of the model."""

    model: str
    input_size: tuple[int, ...]
    rows: list[LayerRow]
    total_params: int
    trainable_params: int
    total_macs: int


def _torchinfo_summary(model: nn.Module, input_size: Sequence[int]):
    try:
        import torchinfo
    except ImportError as exc:
        raise CifarlabError(f"the per-layer table (`cifarlab models NAME --layers`) needs torchinfo: {INSTALL}") from exc
    return torchinfo.summary(
        model, input_size=(1, *input_size), depth=UNLIMITED_DEPTH, device="meta", mode="eval", verbose=0,
        col_names=("output_size", "num_params", "mult_adds", "trainable"),
    )


def own_multiply_adds(model: nn.Module, input_size: Sequence[int]) -> tuple[dict[nn.Module, int], int]:
    """Multiply-adds of each module's own operations (its children's taken out), and the total, for one image.

    FlopCounterMode names a module by its path from the model's class name (`ResNet.stem.0`) and
    counts into it everything run inside it, its children's operations included.
    """
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_size, device="meta"))
    flops = {key: sum(per_op.values()) for key, per_op in counter.get_flop_counts().items()}
    root = type(model).__name__
    path_of = {module: f"{root}.{name}" if name else root for name, module in model.named_modules()}
    own = {}
    for module, path in path_of.items():
        children = sum(flops.get(path_of[child], 0) for child in module.children())
        own[module] = (flops.get(path, 0) - children) // 2  # MACs = FLOPs / 2
    return own, counter.get_total_flops() // 2


def layer_table(name: str, **options: Any) -> LayerTable:
    """The per-layer table of model `name` (10 classes) at its own input size, built on the meta device."""
    with torch.device("meta"):
        model = create(name, **options).eval()
    input_size = tuple(model.input_config.input_size)
    stats = _torchinfo_summary(model, input_size)
    own_macs, total_macs = own_multiply_adds(model, input_size)
    rows, seen = [], set()
    for info in stats.summary_list:
        repeated = info.is_recursive or id(info.module) in seen
        seen.add(id(info.module))
        params = info.num_params if info.is_leaf_layer else info.leftover_params()
        rows.append(LayerRow(
            label=info.get_layer_name(show_var_name=True, show_depth=True),
            depth=info.depth,
            output_shape=tuple(info.output_size) if info.output_size else None,
            params=None if repeated or params <= 0 else params,
            macs=None if repeated else own_macs.get(info.module) or None,
            trainable=info.trainable,
            repeated=repeated,
        ))
    return LayerTable(name, input_size, rows, stats.total_params, stats.trainable_params, total_macs)


def _tree_prefix(depth: int) -> str:
    # torchinfo's tree: children of the model start with ├─, deeper rows are indented by │.
    if depth == 0:
        return ""
    return "├─" if depth == 1 else "│    " * (depth - 1) + "└─"


def _count(value: int | None) -> str:
    return "--" if value is None else f"{value:,}"


def format_layer_table(table: LayerTable) -> str:
    """The table as text in torchinfo's layout: a tree of layers, one column per quantity, totals below."""
    header = ("Layer (type (var_name):depth-idx)", "Output Shape", "Param #", "Mult-Adds", "Trainable")
    lines = [header]
    for row in table.rows:
        shape = "--" if row.output_shape is None else str(list(row.output_shape))
        params = "(recursive)" if row.repeated and row.trainable != "--" else _count(row.params)
        lines.append((_tree_prefix(row.depth) + row.label, shape, params, _count(row.macs), row.trainable))
    widths = [max(len(line[col]) for line in lines) + 2 for col in range(len(header))]
    rule = "=" * sum(widths)

    def render(line: tuple[str, ...]) -> str:
        return "".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()

    size = "x".join(map(str, table.input_size))
    totals = [
        f"Total params: {table.total_params:,}",
        f"Trainable params: {table.trainable_params:,}",
        f"Non-trainable params: {table.total_params - table.trainable_params:,}",
        f"Total mult-adds (one {size} image): {table.total_macs:,} ({table.total_macs / 1e6:,.2f} M)",
    ]
    return "\n".join([rule, render(header), rule, *map(render, lines[1:]), rule, *totals, rule])
