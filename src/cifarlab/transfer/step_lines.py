"""Test accuracy shown during a few-shot run, in the line the BiT PyTorch notebook prints.

`fewshot.eval_every: N` scores the whole test set every N steps and prints

    [Step 499] loss=1.83e-06 train accu=100.00% test accu=84.44% (lr=3e-06)

as the log in seeds/000 does (step counted from 0, so a 500-step run ends at step 499; the lr is the
one that step trained with). It is display only: a few-shot run has no validation split and selects
nothing, so its final weights are scored once more by the run's final evaluation either way.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Optional, TextIO

import torch

from cifarlab.evaluation.scoring import score_split
from cifarlab.evaluation.settings import run_settings
from cifarlab.training.callbacks import Callback, StepOutput


def step_line(step_index: int, loss: float, train_top1: float, test_top1: float, lr: float) -> str:
    """The notebook's line for one step: loss in e-notation, accuracies in percent, the lr as `%g`."""
    return (f"[Step {step_index}] loss={loss:.2e} train accu={train_top1:.2%} "
            f"test accu={test_top1:.2%} (lr={lr:g})")


def batch_top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Accuracy of one training batch; with train.accumulate > 1 the logits are its last micro-batch's."""
    labels = labels[-len(logits):]
    return float((logits.argmax(1) == labels).float().mean())


class StepScoreLines(Callback):
    """Every `every` optimiser steps: score `images` (the test split, uint8) and print the step's line."""

    def __init__(self, every: int, images: torch.Tensor, labels: torch.Tensor, classes: Sequence[str],
                 stream: Optional[TextIO] = None):
        self.every, self.images, self.labels, self.classes = every, images, labels, list(classes)
        self.stream = stream

    def on_step(self, trainer, step: StepOutput) -> None:
        if not trainer.place.is_main or step.step % self.every:
            return
        model = trainer.model
        # The run's own evaluation geometry, CLAHE, precision and memory format, without TTA: the numbers the
        # final evaluation would give for these weights.
        batches = trainer.train_batches
        settings = run_settings(model, trainer.recipe, batches.mean, batches.std, tta="none")
        test = score_split(model, self.images, self.labels, self.classes, settings)
        line = step_line(step.step - 1, float(step.loss), batch_top1(step.logits, step.labels),
                         test.summary["top1"], step.lr)
        print(line, file=self.stream or sys.stdout, flush=True)
