"""Selective backpropagation: each step trains on the hardest part of its batch.

`train.select_hardest: F` scores the whole batch with a forward pass without gradients, then runs the
training forward and backward on the fraction F of it with the highest loss (Jiang et al. 2019,
"Accelerating deep learning by focusing on the biggest losers"; airbench96_faster keeps the hardest
half of each batch, chosen by a small proxy network). The scoring pass costs about a third of a
training step, so only a fraction near one half or below saves time. BatchNorm running statistics
are restored after the scoring pass, so each step still moves them once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def per_example_loss(logits: Tensor, targets: Tensor) -> Tensor:
    """Cross-entropy of each example: class indices (B,) or soft targets (B, C)."""
    if targets.ndim == 2:
        return -(targets.float() * F.log_softmax(logits.float(), dim=1)).sum(dim=1)
    return F.cross_entropy(logits.float(), targets, reduction="none")


@contextmanager
def norm_statistics_kept(model: nn.Module) -> Iterator[None]:
    """Run the block in train mode without changing any BatchNorm running statistics."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [{name: buffer.clone() for name, buffer in m.named_buffers(recurse=False)} for m in norms]
    try:
        yield
    finally:
        with torch.no_grad():
            for module, buffers in zip(norms, saved):
                for name, value in buffers.items():
                    getattr(module, name).copy_(value)


def hardest(forward: nn.Module, model: nn.Module, inputs: Tensor, targets: Tensor, fraction: float,
            autocast) -> tuple[Tensor, Tensor]:
    """(positions of the hardest `fraction` of the batch, the whole batch's logits) from one scoring pass."""
    keep = max(1, round(len(inputs) * fraction))
    with torch.no_grad(), norm_statistics_kept(model), autocast:
        logits = forward(inputs)
    chosen = per_example_loss(logits, targets).topk(keep).indices
    return chosen, logits
