"""Model size at a glance: parameters, multiply-adds per image, and a table of the whole registry."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from cifarlab.errors import CifarlabError
from cifarlab.models.catalogue import create, names


def count_parameters(model: nn.Module) -> int:
    """Number of parameter values; a tensor shared by several layers counts once."""
    return sum(p.numel() for p in model.parameters())


def _device_of(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")


def multiply_adds(model: nn.Module, input_size: Sequence[int] | None = None) -> int:
    """Multiply-adds (MACs) of one forward pass on one image of `input_size` (C, H, W).

    `input_size` defaults to the model's own `input_size`. Counted by
    `torch.utils.flop_counter.FlopCounterMode` in eval mode under `torch.no_grad`, so convs,
    matmuls and linear layers count; BatchNorm, activations, pooling and additions do not.
    MACs = FLOPs / 2. A model on the meta device is counted from shapes alone (no arithmetic
    runs); any other model is counted on a CPU copy, leaving the original where it is.
    """
    size = input_size if input_size is not None else getattr(model, "input_size", None)
    if size is None or len(size) != 3:
        raise CifarlabError(
            f"cannot count multiply-adds: input size {size!r} is not (channels, height, width); "
            "pass input_size=(3, 32, 32) or give the model an `input_size` attribute."
        )
    device = _device_of(model)
    if device.type not in ("cpu", "meta"):
        model, device = copy.deepcopy(model).cpu(), torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        image = torch.zeros(1, *size, device=device)
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(image)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def model_table(only: Sequence[str] | None = None, macs: bool = False) -> list[dict]:
    """One row per registered model (10 classes), or per name in `only`: name, params, input_size, macs.

    Models are built on the meta device, so even the largest cost neither memory nor arithmetic;
    listing every model takes about a second. Multiply-adds are traced through a whole forward
    pass, about half a second per model, so they are counted only with `macs=True` (else None).
    """
    rows = []
    for name in names() if only is None else only:
        with torch.device("meta"):
            model = create(name)
        input_size = tuple(model.input_config.input_size)
        rows.append(
            {
                "name": name,
                "params": count_parameters(model),
                "macs": multiply_adds(model, input_size) if macs else None,
                "input_size": input_size,
            }
        )
    return rows
