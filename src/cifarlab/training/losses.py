"""The loss registry: `train.loss` names a function of (logits, targets) -> mean loss.

Targets are class indices (B,) or soft targets (B, C) that already sum to one (MixUp, CutMix and
label smoothing made in the pipeline). Cross-entropy takes both as they are; the regression-style
losses (MSE, Huber, BCE) compare the logits with one-hot targets, smoothed the same way, so every
loss can be swapped into any recipe (configs/fdu/studies/loss.yaml compares them).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

import torch
import torch.nn.functional as F

from cifarlab.data.augment import augmix_js
from cifarlab.errors import CifarlabError

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
LossFactory = Callable[[float], LossFn]  # label smoothing -> loss function

_LOSSES: dict[str, LossFactory] = {}


def register_loss(name: str) -> Callable[[LossFactory], LossFactory]:
    """Decorator: register `factory(label_smoothing) -> loss_fn` under `name`.

    Registering again from the same code (a re-run notebook cell) replaces the entry; another
    function under a taken name is refused.
    """

    def wrap(factory: LossFactory) -> LossFactory:
        old = _LOSSES.get(name)
        if old is not None and _qualified(old) != _qualified(factory):
            raise ValueError(f"loss {name!r} is already registered by {_qualified(old)}; choose another name")
        _LOSSES[name] = factory
        return factory

    return wrap


def _qualified(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def loss_names() -> list[str]:
    return sorted(_LOSSES)


def get_loss(name: str, label_smoothing: float = 0.0) -> LossFn:
    """The loss registered as `name`, with `label_smoothing` applied to class-index targets."""
    if name not in _LOSSES:
        close = difflib.get_close_matches(name, _LOSSES, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise CifarlabError(f"unknown loss {name!r}{hint}; train.loss takes one of {', '.join(loss_names())}")
    return _LOSSES[name](label_smoothing)


def one_hot_targets(targets: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    """Soft targets as they are; class indices as (smoothed) one-hot rows."""
    if targets.ndim == 2:
        return targets.float()
    return F.one_hot(targets, num_classes).float() * (1.0 - smoothing) + smoothing / num_classes


@register_loss("cross_entropy")
def cross_entropy(label_smoothing: float) -> LossFn:
    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.ndim == 2:  # soft targets from MixUp/CutMix already carry the smoothing
            return F.cross_entropy(logits.float(), targets)
        return F.cross_entropy(logits.float(), targets, label_smoothing=label_smoothing)

    return loss


def _on_one_hot(label_smoothing: float, compare: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> LossFn:
    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        return compare(logits, one_hot_targets(targets, logits.shape[1], label_smoothing))

    return loss


@register_loss("mse")
def mse(label_smoothing: float) -> LossFn:
    # Mean over classes as well as images, nn.MSELoss's default reduction (cifarlab's choice: the seed's
    # criterion study does not give its scale).
    return _on_one_hot(label_smoothing, F.mse_loss)


@register_loss("huber")
def huber(label_smoothing: float) -> LossFn:
    return _on_one_hot(label_smoothing, F.huber_loss)


@register_loss("bce")
def bce_with_logits(label_smoothing: float) -> LossFn:
    # One independent sigmoid per class; numerically stable on logits (not on sigmoid outputs).
    return _on_one_hot(label_smoothing, F.binary_cross_entropy_with_logits)


# AugMix's Jensen-Shannon consistency (Hendrycks et al. 2020): the pipeline sends each image as
# (clean, view, view) triplets when `augment.augmix_js` is on; the loss lives with AugMix.
register_loss("augmix_js")(augmix_js)
