"""Learning-rate schedules as plain functions of the optimiser step, plus reduce-on-plateau.

Each schedule gives the multiplier of the peak lr at a step; only reduce-on-plateau carries state
(it reacts to the validation loss), and that state travels in the checkpoint, so a resumed run
follows the same curve as an uninterrupted one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

from cifarlab.config.recipe import ScheduleConfig
from cifarlab.errors import CifarlabError


def _anneal(start: float, end: float, frac: float, how: str) -> float:
    frac = min(max(frac, 0.0), 1.0)
    if how == "cos":
        return end + (start - end) * (1 + math.cos(math.pi * frac)) / 2
    return start + (end - start) * frac


@dataclass
class LrSchedule:
    """lr(step) = peak_lr * factor(step); `boundaries` are in optimiser steps (HyperRule only)."""

    cfg: ScheduleConfig
    peak_lr: float
    total_steps: int
    steps_per_epoch: int
    boundaries: Optional[list[int]] = None
    plateau_scale: float = 1.0
    best_val_loss: float = math.inf
    bad_epochs: int = 0

    def __post_init__(self):
        if self.cfg.name in ("piecewise", "hyperrule") and not self.boundaries:
            raise CifarlabError(f"schedule.name={self.cfg.name} needs schedule.boundaries (warmup end, decay steps, "
                                "last step), e.g. [100, 200, 300, 400, 500]")

    def lr_at(self, step: int) -> float:
        return self.peak_lr * self.factor(step)

    def factor(self, step: int) -> float:
        c, spe = self.cfg, max(self.steps_per_epoch, 1)
        epoch = step / spe
        name = c.name
        if name in ("constant", "plateau"):  # plateau_scale stays 1 unless reduce-on-plateau lowers it
            return self._warmup(step) * self.plateau_scale
        if name == "onecycle":
            return self._onecycle(step)
        if name == "cosine":
            warm = c.warmup_epochs * spe
            if step < warm:
                return self._warmup(step)
            frac = (step - warm) / max(self.total_steps - warm, 1)
            floor = c.min_lr / self.peak_lr if self.peak_lr > 0 else 0.0
            return _anneal(1.0, floor, frac, "cos")
        if name == "step":
            return self._warmup(step) * c.gamma ** int(epoch // c.step_size)
        if name == "multistep":
            return self._warmup(step) * c.gamma ** sum(epoch >= m for m in c.milestones)
        if name in ("piecewise", "hyperrule"):
            return self._piecewise(step)
        raise CifarlabError(f"unknown schedule {name!r}")

    def _warmup(self, step: int) -> float:
        """Linear from warmup_start_lr to the peak over warmup_epochs; step 0 already takes the first increment,
        so with the default start of 0 no step is wasted at lr 0."""
        warm = self.cfg.warmup_epochs * self.steps_per_epoch
        if warm <= 0:
            return 1.0
        rise = min(1.0, (step + 1) / warm)
        start = self.cfg.warmup_start_lr / self.peak_lr if self.peak_lr > 0 else 0.0
        return rise if start == 0 else start + (1.0 - start) * rise

    def _onecycle(self, step: int) -> float:
        # As torch's OneCycleLR with three_phase=False: rise to the peak, then anneal to the floor.
        c = self.cfg
        peak_step = max(c.peak_epoch * self.steps_per_epoch - 1, 1)
        last = max(self.total_steps - 1, peak_step + 1)
        start = 1.0 / c.div_factor
        end = start / c.final_div_factor
        if step <= peak_step:
            return _anneal(start, 1.0, step / peak_step, c.anneal)
        return _anneal(1.0, end, (step - peak_step) / (last - peak_step), c.anneal)

    def _piecewise(self, step: int) -> float:
        """Linear warmup from 0 to the first boundary, then the lr divided by 10 after each decay
        boundary (BiT-HyperRule's shape); past the last boundary it stays at its final value."""
        warmup, *decays, last = self.boundaries
        step = min(step, last - 1)
        if step < warmup:
            return step / warmup
        factor = 1.0
        for boundary in decays:
            if boundary < step:
                factor /= 10  # repeated division, not 10**-k: the same floats as the published rule
        return factor

    def on_validation(self, val_loss: float) -> None:
        """Reduce-on-plateau: multiply by `factor` after `patience` epochs without a better val loss."""
        if self.cfg.name != "plateau":
            return
        if val_loss < self.best_val_loss * (1 - 1e-4):
            self.best_val_loss, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs > self.cfg.patience:
                floor = self.cfg.min_lr / self.peak_lr if self.peak_lr > 0 else 0.0
                self.plateau_scale = max(self.plateau_scale * self.cfg.factor, floor)
                self.bad_epochs = 0

    def state_dict(self) -> dict:
        return {"plateau_scale": self.plateau_scale, "best_val_loss": self.best_val_loss, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict) -> None:
        self.plateau_scale = state["plateau_scale"]
        self.best_val_loss = state["best_val_loss"]
        self.bad_epochs = state["bad_epochs"]
