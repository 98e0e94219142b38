"""Training loss, accuracy and throughput summed on the device between log points and over an epoch.

The epoch's sums are part of a checkpoint, so a run stopped mid-epoch and resumed logs the same
epoch loss and accuracy as an uninterrupted run.
"""

from __future__ import annotations

import time
from typing import Optional

import torch


class MetricsWindow:
    def __init__(self, device: torch.device):
        self.device = device
        self.bad_step = torch.full((), -1, dtype=torch.long, device=device)
        self._reset_log()
        self._reset_epoch()

    def _reset_log(self) -> None:
        self.loss_sum = torch.zeros((), device=self.device)
        self.correct = torch.zeros((), device=self.device)
        self.images, self.steps, self.started = 0, 0, time.perf_counter()

    def _reset_epoch(self) -> None:
        self.epoch_loss_sum = torch.zeros((), device=self.device)
        self.epoch_correct = torch.zeros((), device=self.device)
        self.epoch_images, self.epoch_steps = 0, 0
        self.epoch_seconds_before = 0.0  # training time of this epoch spent before a resume
        self.epoch_started = time.perf_counter()

    def add(self, loss: torch.Tensor, correct: torch.Tensor, images: int, step: int) -> None:
        """Count one optimiser step (`step` = steps done including it)."""
        self.loss_sum += loss
        self.correct += correct
        self.epoch_loss_sum += loss
        self.epoch_correct += correct
        self.images += images
        self.steps += 1
        self.epoch_images += images
        self.epoch_steps += 1
        # Remember the first non-finite step without a host sync.
        bad = ~torch.isfinite(loss) & (self.bad_step < 0)
        self.bad_step = torch.where(bad, torch.full_like(self.bad_step, step), self.bad_step)

    def first_nonfinite(self) -> Optional[int]:
        bad = int(self.bad_step)
        return bad if bad >= 0 else None

    def flush(self, **fields) -> dict:
        """The record of the steps since the last flush (kind "step")."""
        elapsed = time.perf_counter() - self.started
        record = dict(fields, loss=float(self.loss_sum) / max(self.steps, 1),
                      train_top1=float(self.correct) / max(self.images, 1), images_per_s=self.images / max(elapsed, 1e-9))
        self._reset_log()
        return record

    def epoch_summary(self, **fields) -> dict:
        """The record of the whole epoch (kind "epoch"); starts the next epoch's sums."""
        elapsed = self.epoch_seconds_before + time.perf_counter() - self.epoch_started
        record = dict(fields, kind="epoch", loss=float(self.epoch_loss_sum) / max(self.epoch_steps, 1),
                      train_top1=float(self.epoch_correct) / max(self.epoch_images, 1),
                      images_per_s=self.epoch_images / max(elapsed, 1e-9), time_s=elapsed)
        self._reset_epoch()
        return record

    def state_dict(self) -> dict:
        """The epoch's sums as plain numbers (a checkpoint holds no device tensors of ours)."""
        return {"epoch_loss_sum": float(self.epoch_loss_sum), "epoch_correct": float(self.epoch_correct),
                "epoch_images": self.epoch_images, "epoch_steps": self.epoch_steps,
                "epoch_seconds": self.epoch_seconds_before + time.perf_counter() - self.epoch_started}

    def load_state_dict(self, state: dict) -> None:
        self._reset_log()
        self._reset_epoch()
        self.epoch_loss_sum.fill_(state["epoch_loss_sum"])
        self.epoch_correct.fill_(state["epoch_correct"])
        self.epoch_images, self.epoch_steps = int(state["epoch_images"]), int(state["epoch_steps"])
        self.epoch_seconds_before = float(state["epoch_seconds"])
