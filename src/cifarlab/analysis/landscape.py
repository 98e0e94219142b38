"""Loss-landscape slices: filter-normalised random directions and linear interpolation between weights.

Random directions follow Li et al. (2018, "Visualizing the Loss Landscape of Neural Nets"):
each filter of a random Gaussian direction (a row of a weight tensor: one output channel of a
convolution, one unit of a linear layer) is rescaled to the norm of the same filter of the
weights, so that a step of 1 means the same relative change in every layer whatever its scale.
Parameters of one dimension or fewer (biases, BatchNorm scales and shifts) are held fixed (zero in
the direction), as the paper does; BatchNorm running statistics are buffers and stay as trained.

Interpolation follows Goodfellow et al. (2015): theta(alpha) = (1 - alpha) theta_A + alpha theta_B.
Floating-point buffers (BatchNorm running statistics) are interpolated with the weights, so that
both ends are exactly the two trained models.

Every point is scored in eval mode (BatchNorm with its running statistics) on a fixed set of
preprocessed images held on the model's device.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.predict import eval_mode

Direction = dict[str, Tensor]


def normalise_filters(direction: Direction, weights: dict[str, Tensor]) -> Direction:
    """`direction` with each filter rescaled to its weight filter's norm; 1-D entries set to zero.

    A filter is a slice along the first dimension. A zero filter of the direction stays zero.
    """
    normalised = {}
    for name, weight in weights.items():
        values = direction[name]
        if weight.ndim <= 1:
            normalised[name] = torch.zeros_like(values)
            continue
        weight_norms = weight.flatten(1).norm(dim=1)
        direction_norms = values.flatten(1).norm(dim=1)
        scale = weight_norms / direction_norms.clamp_min(1e-10)
        normalised[name] = values * scale.view(-1, *([1] * (values.ndim - 1)))
    return normalised


def random_direction(model: nn.Module, generator: torch.Generator) -> Direction:
    """A filter-normalised Gaussian direction over the model's parameters (drawn on the CPU, so a
    seed gives the same direction on every device)."""
    weights = {name: parameter.detach() for name, parameter in model.named_parameters()}
    drawn = {name: torch.randn(weight.shape, generator=generator).to(weight) for name, weight in weights.items()}
    return normalise_filters(drawn, weights)


def score(model: nn.Module, inputs: Tensor, labels: Tensor, batch_size: int = 500) -> tuple[float, float]:
    """(mean cross-entropy loss, top-1 accuracy) of the model on preprocessed `inputs`, in eval mode."""
    total_loss = torch.zeros((), dtype=torch.float64, device=inputs.device)
    total_correct = torch.zeros((), dtype=torch.int64, device=inputs.device)
    with eval_mode(model), torch.inference_mode():
        for start in range(0, len(inputs), batch_size):
            logits = model(inputs[start : start + batch_size]).float()
            targets = labels[start : start + batch_size]
            total_loss += F.cross_entropy(logits, targets, reduction="sum").double()
            total_correct += (logits.argmax(dim=1) == targets).sum()
    return total_loss.item() / len(inputs), total_correct.item() / len(inputs)


def _move_to(model: nn.Module, base: Direction, point: Sequence[float], directions: Sequence[Direction]) -> None:
    """Set the model's parameters to base + sum of step * direction, in place."""
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            parameter.copy_(base[name])
            for step, direction in zip(point, directions):
                parameter.add_(direction[name], alpha=step)


def slice_surface(model: nn.Module, directions: Sequence[Direction], coordinates: Tensor, inputs: Tensor,
                  labels: Tensor, batch_size: int = 500) -> tuple[Tensor, Tensor]:
    """Loss and accuracy at theta + x d1 (+ y d2) for every x (and y) in `coordinates`.

    With one direction both results have shape (P,); with two, (P, P) indexed [x, y]. The model's
    parameters are put back as they were afterwards.
    """
    if len(directions) not in (1, 2):
        raise CifarlabError(f"a landscape slice has 1 or 2 directions, got {len(directions)}; use --dims 1 or 2")
    base = {name: parameter.detach().clone() for name, parameter in model.named_parameters()}
    grid = torch.cartesian_prod(*([coordinates] * len(directions))).view(-1, len(directions))
    losses, accuracies = torch.empty(len(grid), dtype=torch.float64), torch.empty(len(grid), dtype=torch.float64)
    try:
        for index, point in enumerate(grid.tolist()):
            _move_to(model, base, point, directions)
            losses[index], accuracies[index] = score(model, inputs, labels, batch_size)
    finally:
        _move_to(model, base, (), ())
    shape = (len(coordinates),) * len(directions)
    return losses.view(shape), accuracies.view(shape)


def check_same_shapes(state_a: dict[str, Tensor], state_b: dict[str, Tensor], names: tuple[str, str]) -> None:
    """Raise a CifarlabError unless two state dicts hold the same tensors by name and shape."""
    keys_a, keys_b = set(state_a), set(state_b)
    mismatched = sorted(k for k in keys_a & keys_b if state_a[k].shape != state_b[k].shape)
    if keys_a != keys_b or mismatched:
        detail = mismatched[:3] or sorted(keys_a ^ keys_b)[:3]
        raise CifarlabError(f"{names[0]} and {names[1]} are different networks (they differ at {detail}); "
                            "interpolate between two runs of the same model")


@dataclass
class Endpoint:
    """One end of an interpolation: a model's state dict and the mean/std its inputs are normalised with."""

    state: dict[str, Tensor]
    mean: Sequence[float]
    std: Sequence[float]


def interpolate(model: nn.Module, a: Endpoint, b: Endpoint, alphas: Tensor, pixels: Tensor, labels: Tensor,
                batch_size: int = 500) -> tuple[Tensor, Tensor]:
    """Loss and accuracy (each (len(alphas),)) of `model` loaded with (1 - alpha) A + alpha B.

    `pixels` are the images scaled to [0, 1] (and resized), not yet normalised: the input
    normalisation is part of each end (two runs on different validation splits have slightly
    different statistics), so it is interpolated too and each end is exactly its own model.
    Floating-point entries (weights, running statistics) are interpolated; integer ones (BatchNorm
    batch counters) come from A. The model is left holding state A.
    """
    state_a, state_b = a.state, b.state
    check_same_shapes(state_a, state_b, ("A", "B"))
    statistics = {key: torch.tensor([getattr(a, key), getattr(b, key)], dtype=torch.float32, device=pixels.device)
                  for key in ("mean", "std")}
    losses, accuracies = torch.empty(len(alphas), dtype=torch.float64), torch.empty(len(alphas), dtype=torch.float64)
    device = next(iter(model.state_dict().values())).device
    try:
        for index, alpha in enumerate(alphas.tolist()):
            mixed = {
                name: ((1 - alpha) * value + alpha * state_b[name]) if value.is_floating_point() else value
                for name, value in state_a.items()
            }
            model.load_state_dict({name: value.to(device) for name, value in mixed.items()})
            mean, std = ((1 - alpha) * statistics[key][0] + alpha * statistics[key][1] for key in ("mean", "std"))
            inputs = (pixels - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
            losses[index], accuracies[index] = score(model, inputs, labels, batch_size)
    finally:
        model.load_state_dict({name: value.to(device) for name, value in state_a.items()})
    return losses, accuracies
