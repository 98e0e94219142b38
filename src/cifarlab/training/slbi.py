"""Split linearised Bregman iteration (SLBI, DessiLBI): SGD or Adam on the weights W, coupled to a sparse copy Gamma.

Fu et al. 2020, "DessiLBI: Exploring Structural Sparsity of Deep Networks via Differential
Inclusion Paths". Every convolution and linear weight W gets an auxiliary variable z and its
sparse image Gamma; one step with learning rate lr is

    W     <- W - kappa * lr * (direction(grad + weight_decay * W) + (W - Gamma) / mu)
    z     <- z + lr / mu * (W_before - Gamma)
    Gamma <- kappa * Shrink(z, lambda)

where `direction` is SGD with momentum (`slbi`) or Adam's normalised step (`slbi_adam`). Shrink is
group soft-thresholding: a convolution's output filter is one group (it enters the support as a
whole when the l2 norm of its z passes lambda), every linear weight is its own group. z starts
at zero, so Gamma starts empty and its support grows along the path: filters that enter early
are the important ones, which is what `cifarlab prune` reads. Parameters of other shapes (biases,
normalisation) take the plain step `W <- W - kappa * lr * direction`, as the reference does.

z and Gamma live in the optimiser's state, so they are saved in last.pt and a resumed run
continues bitwise where it stopped.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def is_split(parameter: Tensor) -> bool:
    """Whether SLBI couples this parameter to a sparse Gamma: convolution (4-D) and linear (2-D) weights."""
    return parameter.ndim in (2, 4)


def shrink(z: Tensor, threshold: float) -> Tensor:
    """Group soft-thresholding: filters of a 4-D tensor shrink by their l2 norm, other tensors element-wise."""
    if z.ndim == 4:
        norms = z.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        # clamp_min avoids 0/0 for an all-zero filter; its factor is 0 anyway
        return z * (1 - threshold / norms.clamp_min(1e-30)).clamp_min(0)
    return z.sign() * (z.abs() - threshold).clamp_min(0)


def group_norms(tensor: Tensor) -> Tensor:
    """One size per pruning group: the l2 norm of each output filter of a 4-D tensor, |value| otherwise."""
    if tensor.ndim == 4:
        return tensor.flatten(1).norm(dim=1)
    return tensor.abs()


class SLBI(torch.optim.Optimizer):
    """SLBI with SGD momentum (`adaptive=False`) or Adam (`adaptive=True`) as the weights' direction.

    kappa scales the weights' step and Gamma (the reference's default is 1); mu is the coupling
    between W and Gamma (larger: W is freer and Gamma grows more slowly); lambda is the
    soft-threshold a group's z must pass to enter the support.
    """

    def __init__(self, params: Iterable, lr: float, kappa: float = 1.0, mu: float = 100.0, threshold: float = 1.0,
                 momentum: float = 0.9, weight_decay: float = 0.0, adaptive: bool = False,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        if kappa <= 0 or mu <= 0:
            raise ValueError(f"SLBI needs kappa > 0 and mu > 0, got kappa={kappa}, mu={mu}")
        defaults = dict(lr=lr, kappa=kappa, mu=mu, threshold=threshold, momentum=momentum,
                        weight_decay=weight_decay, adaptive=adaptive, betas=tuple(betas), eps=eps)
        super().__init__(params, defaults)

    def _direction(self, parameter: Tensor, gradient: Tensor, group: dict) -> Tensor:
        state = self.state[parameter]
        if group["adaptive"]:
            beta1, beta2 = group["betas"]
            if "exp_avg" not in state:
                state["step"] = torch.zeros((), dtype=torch.float64)
                state["exp_avg"] = torch.zeros_like(parameter)
                state["exp_avg_sq"] = torch.zeros_like(parameter)
            state["step"] += 1
            step = float(state["step"])
            state["exp_avg"].mul_(beta1).add_(gradient, alpha=1 - beta1)
            state["exp_avg_sq"].mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
            denominator = (state["exp_avg_sq"] / (1 - beta2 ** step)).sqrt_().add_(group["eps"])
            return state["exp_avg"] / (1 - beta1 ** step) / denominator
        if group["momentum"] == 0:
            return gradient
        if "momentum_buffer" not in state:
            state["momentum_buffer"] = gradient.clone()
        else:
            state["momentum_buffer"].mul_(group["momentum"]).add_(gradient)
        return state["momentum_buffer"]

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, kappa, mu = group["lr"], group["kappa"], group["mu"]
            for parameter in group["params"]:
                if parameter.grad is None:
                    continue
                gradient = parameter.grad
                if group["weight_decay"]:
                    gradient = gradient.add(parameter, alpha=group["weight_decay"])
                direction = self._direction(parameter, gradient, group)
                if not is_split(parameter):
                    parameter.add_(direction, alpha=-kappa * lr)
                    continue
                state = self.state[parameter]
                if "z" not in state:
                    state["z"] = torch.zeros_like(parameter)
                    state["gamma"] = torch.zeros_like(parameter)
                gap = parameter - state["gamma"]  # W_before - Gamma, the pull between the two
                parameter.add_(direction + gap / mu, alpha=-kappa * lr)
                state["z"].add_(gap, alpha=lr / mu)
                state["gamma"] = kappa * shrink(state["z"], group["threshold"])
        return loss

    def gammas(self) -> dict[Tensor, Tensor]:
        """parameter -> its Gamma, for every parameter that has taken a step."""
        return {p: s["gamma"] for p, s in self.state.items() if "gamma" in s}

    def support_size(self) -> int:
        """Number of groups (conv filters, linear weights) in the support of Gamma right now."""
        return sum(int((group_norms(gamma) > 0).sum()) for gamma in self.gammas().values())

