"""Pruning masks: which filters (or weights) to remove at a ratio, ranked by DessiLBI's Gamma or by weight magnitude.

A pruning group is one output filter of a convolution weight, or one entry of a linear weight.
At ratio r every pruned layer loses round(r * groups) of its groups, the lowest ranked:

    slbi        groups in the support of Gamma are kept first, largest Gamma first (a group that
                entered the path earlier has the larger Gamma); the rest by weight magnitude
    magnitude   by the l2 norm of the filter (|w| for a linear weight), the usual baseline

A pruned filter's bias goes with it. Gamma comes from the SLBI optimiser's state in a run's last.pt.
A pruned model fine-tunes with `MaskKeeper`, a training callback that keeps the pruned groups at zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch
from torch import Tensor, nn

from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.runs import Run
from cifarlab.runs.checkpoint import load_checkpoint, load_model_state
from cifarlab.training.callbacks import Callback, StepOutput, Trainer
from cifarlab.training.optim import build_optimizer
from cifarlab.training.slbi import SLBI, group_norms

METHODS = ("slbi", "magnitude")


def prunable_weights(model: nn.Module, layers: Optional[Sequence[str]] = None) -> dict[str, Tensor]:
    """name -> weight of the layers to prune: every convolution by default, or the named conv/linear weights.

    `layers` may hold "all" (every convolution and linear weight) or parameter names such as
    `features.0.weight`.
    """
    parameters = dict(model.named_parameters())
    if not layers:
        return {name: p for name, p in parameters.items() if p.ndim == 4 and name.endswith("weight")}
    if list(layers) == ["all"]:
        return {name: p for name, p in parameters.items() if p.ndim in (2, 4) and name.endswith("weight")}
    unknown = [name for name in layers if name not in parameters or parameters[name].ndim not in (2, 4)]
    if unknown:
        choices = ", ".join(name for name, p in parameters.items() if p.ndim in (2, 4))
        raise CifarlabError(f"--layers {' '.join(unknown)}: not a convolution or linear weight of this model; "
                            f"choose from: {choices} (or all)")
    return {name: parameters[name] for name in layers}


def ranking(weight: Tensor, gamma: Optional[Tensor], method: str) -> Tensor:
    """Group indices (flattened) from the first to prune to the last."""
    sizes = group_norms(weight.detach()).flatten()
    order = torch.argsort(sizes, stable=True)
    if method == "magnitude":
        return order
    if method != "slbi":
        raise CifarlabError(f"unknown pruning method {method!r}; use one of {', '.join(METHODS)}")
    if gamma is None:
        raise CifarlabError("pruning by Gamma needs a run trained with optim.name=slbi or slbi_adam")
    # Stable sorts: by Gamma, ties (the groups outside the support, Gamma = 0) by weight magnitude.
    strength = group_norms(gamma.to(weight.device)).flatten()
    return order[torch.argsort(strength[order], stable=True)]


def keep_masks(weights: dict[str, Tensor], gammas: dict[str, Tensor], method: str, ratio: float) -> dict[str, Tensor]:
    """name -> bool mask over the groups of that weight (filters, or entries of a linear weight): True is kept."""
    if not 0 <= ratio <= 1:
        raise CifarlabError(f"pruning ratio {ratio:g} is not a share; give percentages from 0 to 100")
    masks = {}
    for name, weight in weights.items():
        order = ranking(weight, gammas.get(name), method)
        keep = torch.ones(order.numel(), dtype=torch.bool, device=weight.device)
        keep[order[: round(ratio * order.numel())]] = False
        masks[name] = keep.view(group_norms(weight).shape)
    return masks


def element_mask(weight: Tensor, keep: Tensor) -> Tensor:
    """A group mask broadcast to the weight's shape (a filter mask covers the whole filter)."""
    if weight.ndim == 4:
        return keep.view(-1, 1, 1, 1).expand_as(weight)
    return keep


@torch.no_grad()
def apply_masks(model: nn.Module, masks: dict[str, Tensor]) -> None:
    """Zero the pruned groups in place, and the biases of pruned filters."""
    parameters = dict(model.named_parameters())
    for name, keep in masks.items():
        weight = parameters[name]
        weight.mul_(element_mask(weight, keep).to(weight.dtype))
        bias = parameters.get(name[: -len("weight")] + "bias")
        if weight.ndim == 4 and bias is not None:
            bias.mul_(keep.to(bias.dtype))


class MaskKeeper(Callback):
    """Zeroes the pruned groups again after every optimiser step, so that training keeps the pruning."""

    def __init__(self, masks: dict[str, Tensor]):
        self.masks = masks

    def on_step(self, trainer: Trainer, step: StepOutput) -> None:
        apply_masks(trainer.model, self.masks)


def removed_share(weights: dict[str, Tensor], masks: dict[str, Tensor]) -> float:
    """Share of the prunable weights' entries that the masks remove."""
    total = sum(w.numel() for w in weights.values())
    removed = sum(int((~element_mask(weights[name], keep)).sum()) for name, keep in masks.items())
    return removed / total if total else 0.0


def model_and_gammas(run: Run) -> tuple[nn.Module, dict[str, Tensor]]:
    """The model at the run's last.pt and, when it trained with SLBI, name -> Gamma (empty otherwise).

    last.pt, not best.pt: Gamma is the optimiser's, and belongs with the weights saved beside it.
    """
    if "last" not in run.checkpoints:
        raise CifarlabError(f"run folder {run.dir} has no last.pt (Gamma lives in the optimiser state there); "
                            f"train or resume the run to the end first")
    saved = load_checkpoint(run.checkpoints["last"])
    model = create(run.recipe.model.name, num_classes=saved["num_classes"], **run.recipe.model.options)
    load_model_state(model, saved["model"], str(run.checkpoints["last"]))
    if run.recipe.optim.name not in ("slbi", "slbi_adam"):
        return model.eval(), {}
    optimizer = build_optimizer(model, run.recipe.optim, lr=1.0)
    try:
        optimizer.load_state_dict(saved["optimizer"])
    except (ValueError, KeyError) as exc:
        raise CifarlabError(f"the optimiser state in {run.checkpoints['last']} does not fit the run's model "
                            f"({exc}); prune a run folder cifarlab wrote, with its own recipe.yaml") from None
    assert isinstance(optimizer, SLBI)
    names = {id(p): name for name, p in model.named_parameters()}
    return model.eval(), {names[id(p)]: gamma for p, gamma in optimizer.gammas().items()}
