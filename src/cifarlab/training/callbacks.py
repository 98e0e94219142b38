"""How anything outside the loop watches or steers a run: callbacks with one method per moment.

The console bar, the metrics files and TensorBoard are callbacks; so is an analysis that records
gradient norms or stops a run early. A callback overrides only the moments it cares about:

    on_start(trainer, total_steps, start_step)   before the first step (also after a resume)
    on_step(trainer, step)                       after each optimiser step; `step` is a StepOutput and
                                                 the parameters' `.grad` still hold that step's gradients
    on_log(trainer, record)                      a metrics record: kind "step" every train.log_every steps
    on_epoch(trainer, record)                    the epoch record (kind "epoch", with validation numbers)
    on_eval(trainer, split, result)              a final evaluation (split "val", "test", "test_ema")
    on_end(trainer, status)                      "finished", "stopped" or "failed", after the final
                                                 evaluation; close files here

Setting `trainer.stop_requested = True` from any of them ends the run after the current step, with
a `last.pt` written, exactly as Ctrl-C does. Records are plain dicts of numbers (keys in
`cifarlab.evaluation.plots`); callbacks must not call `.item()` on step tensors unless they accept
a host synchronisation per step.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Protocol

import torch
from torch import nn

from cifarlab.config.recipe import Recipe
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.training.averaging import ModelEMA
from cifarlab.training.distributed import Placement
from cifarlab.training.metrics_window import MetricsWindow


@dataclass
class StepOutput:
    """What one optimiser step produced, as the callbacks see it (tensors stay on the device)."""

    step: int  # optimiser steps done, counting this one
    inputs: torch.Tensor
    targets: torch.Tensor  # class indices, or soft targets (MixUp/CutMix, label smoothing)
    labels: torch.Tensor  # class indices
    logits: torch.Tensor  # detached; of the last micro-batch when train.accumulate > 1
    loss: torch.Tensor  # detached mean loss of the step
    lr: float


class Trainer(Protocol):
    """What a callback sees of the trainer running it (`cifarlab.training.loop.Trainer` is one).

    A Protocol rather than the class itself, so that callbacks and the loop do not import each other.
    """

    recipe: Recipe
    model: nn.Module
    run_dir: Optional[Path]  # None for a Trainer without a run folder (a study's training)
    place: Placement
    stop_requested: bool  # set True to end the run after the current step, as Ctrl-C does
    steps_per_epoch: int
    total_steps: int
    ema: Optional[ModelEMA]
    progress: Any  # cifarlab.training.loop.Progress: steps and epochs done
    window: MetricsWindow  # the step records not yet logged
    train_batches: BatchPipeline


class Callback:
    """Base class: every moment is a no-op until a subclass overrides it."""

    def on_start(self, trainer: Trainer, total_steps: int, start_step: int) -> None:
        pass

    def on_step(self, trainer: Trainer, step: StepOutput) -> None:
        pass

    def on_log(self, trainer: Trainer, record: dict) -> None:
        pass

    def on_epoch(self, trainer: Trainer, record: dict) -> None:
        pass

    def on_eval(self, trainer: Optional[Trainer], split: str, result: dict) -> None:
        pass

    def on_end(self, trainer: Trainer, status: str) -> None:
        pass


class CallbackList:
    """Calls every callback in order; the Trainer holds one of these."""

    def __init__(self, callbacks: Iterable[Callback] = ()):
        self.callbacks: list[Callback] = list(callbacks)

    def call(self, moment: str, *args: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, moment)(*args)
