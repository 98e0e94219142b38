"""Weight averaging: an EMA copy of the model, and airbench-style lookahead.

`ModelEMA` keeps a separate averaged model for evaluation; the trained model is untouched.
`Lookahead` keeps slow weights and pulls the trained model back onto them every few
steps, with a pull that grows over the schedule (none early, strong at the end).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from cifarlab.errors import CifarlabError


def _averaged(tensor: torch.Tensor) -> bool:
    # Integer state (BatchNorm's num_batches_tracked) cannot be interpolated.
    return tensor.dtype.is_floating_point


class ModelEMA:
    """An exponential moving average of a model's weights, usable as a model (`ema.module`).

    After `update(model)`: every float parameter is `d * ema + (1 - d) * model`. Buffers
    (BatchNorm running statistics, counters) are copied from the model by default
    (`buffers="copy"`), or averaged like weights with `buffers="average"`. With
    `warmup=True` the decay used at update t is min(decay, (1 + t) / (10 + t)), so early
    averages are not dominated by the random initialisation.
    """

    def __init__(self, model: nn.Module, decay: float = 0.999, warmup: bool = False, buffers: str = "copy"):
        if not 0.0 <= decay <= 1.0:
            raise CifarlabError(f"EMA decay must lie in [0, 1], got {decay}; a typical value is 0.999.")
        if buffers not in ("copy", "average"):
            raise CifarlabError(f"EMA buffers must be 'copy' or 'average', got {buffers!r}.")
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.warmup = warmup
        self.buffers = buffers
        self.updates = 0

    def current_decay(self) -> float:
        """The decay the next update will use."""
        if self.warmup:
            return min(self.decay, (1 + self.updates) / (10 + self.updates))
        return self.decay

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average."""
        d = self.current_decay()
        for ema_p, p in zip(self.module.parameters(), model.parameters(), strict=True):
            ema_p.mul_(d).add_(p.detach().to(ema_p.dtype), alpha=1 - d)
        for ema_b, b in zip(self.module.buffers(), model.buffers(), strict=True):
            if self.buffers == "average" and _averaged(ema_b):
                ema_b.mul_(d).add_(b.to(ema_b.dtype), alpha=1 - d)
            else:
                ema_b.copy_(b)
        self.updates += 1

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)

    def state_dict(self) -> dict:
        return {
            "module": self.module.state_dict(),
            "decay": self.decay,
            "warmup": self.warmup,
            "buffers": self.buffers,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.decay = state["decay"]
        self.warmup = state["warmup"]
        self.buffers = state["buffers"]
        self.updates = state["updates"]


class Lookahead:
    """airbench's lookahead: every `every` steps, slow = lerp(slow, fast, 1 - d); fast = slow.

    The decay at step t of `total_steps` is d(t) = base_decay * (t / total_steps) ** power
    (airbench94: every 5 steps, base_decay 0.95**5, power 3), so the early run trains
    freely and the late run is averaged ever more strongly. All float entries of the
    state dict take part, BatchNorm running statistics included. `finish(model)` at the
    end copies the slow weights into the model (airbench's last update with d = 1).
    """

    def __init__(
        self,
        model: nn.Module,
        total_steps: int,
        every: int = 5,
        base_decay: float = 0.95**5,
        power: float = 3.0,
    ):
        if total_steps < 1 or every < 1:
            raise CifarlabError(
                f"lookahead needs total_steps >= 1 and every >= 1, got {total_steps} and {every}; "
                "pass the run's number of optimiser steps."
            )
        self.total_steps = total_steps
        self.every = every
        self.base_decay = base_decay
        self.power = power
        self.slow = {k: v.detach().clone() for k, v in model.state_dict().items() if _averaged(v)}

    def decay_at(self, step: int) -> float:
        """The decay used by an update after optimiser step `step` (1-based)."""
        return self.base_decay * (min(step, self.total_steps) / self.total_steps) ** self.power

    @torch.no_grad()
    def apply(self, model: nn.Module, decay: float) -> None:
        """One lookahead update with an explicit decay."""
        state = model.state_dict()
        for name, slow in self.slow.items():
            fast = state[name]
            slow.lerp_(fast.to(slow.dtype), 1 - decay)
            fast.copy_(slow)

    def step(self, model: nn.Module, step: int) -> bool:
        """Call after optimiser step `step` (1-based); updates when step is a multiple of `every`."""
        if step % self.every != 0:
            return False
        self.apply(model, self.decay_at(step))
        return True

    def finish(self, model: nn.Module) -> None:
        """Put the slow weights into the model (an update with decay 1)."""
        self.apply(model, 1.0)

    def state_dict(self) -> dict:
        return {
            "slow": {k: v.clone() for k, v in self.slow.items()},
            "total_steps": self.total_steps,
            "every": self.every,
            "base_decay": self.base_decay,
            "power": self.power,
        }

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.slow) ^ set(state["slow"])
        if missing:
            raise CifarlabError(
                f"lookahead state does not match this model (differs in {sorted(missing)[:3]}); "
                "resume with the model the checkpoint was written for."
            )
        for k, v in state["slow"].items():
            self.slow[k].copy_(v)
        self.total_steps = state["total_steps"]
        self.every = state["every"]
        self.base_decay = state["base_decay"]
        self.power = state["power"]
