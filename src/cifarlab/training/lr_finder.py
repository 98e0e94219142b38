"""The LR range test (Smith 2017): raise the lr exponentially for a few steps and watch the loss."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from cifarlab import runs
from cifarlab.atomic import atomic_path, write_text
from cifarlab.config.recipe import Recipe
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.progress import track
from cifarlab.training.losses import get_loss
from cifarlab.training.optim import build_optimizer
from cifarlab.training.step import Optimisation, training_step


def suggest_lr(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The lr where the smoothed loss falls fastest (steepest negative slope against log lr)."""
    if len(lrs) < 3:
        return float(lrs[0])
    slope = np.gradient(losses, np.log(lrs))
    # Ignore the last stretch, where the loss blows up.
    end = max(int(np.argmin(losses)), 2)
    return float(lrs[int(np.argmin(slope[:end]))])


def lr_range_test(recipe: Recipe, model: torch.nn.Module, batches: BatchPipeline, device: torch.device,
                  out_dir: Optional[Path], start_lr: float = 1e-7, end_lr: float = 10.0, num_steps: int = 100) -> float:
    """Run the test on a copy of `model` (the model itself is left untouched); write lr_find.png/json.

    The steps are the run's own (`training_step` with the recipe's loss, precision, memory format,
    accumulation and clipping), on the run's training batches from a different epoch seed than training will use.
    """
    t = recipe.train
    # The run's memory format too: its batches arrive channels_last when t.channels_last is set.
    memory_format = torch.channels_last if t.channels_last else torch.preserve_format
    model = copy.deepcopy(model).to(device, memory_format=memory_format).train()
    batches = dataclasses.replace(batches, seed=recipe.seed + 1)
    opt = Optimisation(model=model, optimizer=build_optimizer(model, recipe.optim, start_lr),
                       loss=get_loss(t.loss, t.label_smoothing), device=device, precision=t.precision,
                       accumulate=t.accumulate, grad_clip=t.grad_clip, grad_clip_mode=t.grad_clip_mode)
    ratio = (end_lr / start_lr) ** (1 / max(num_steps - 1, 1))
    lrs: list[float] = []
    losses: list[float] = []
    smooth, best = 0.0, math.inf
    epoch, stream = 0, iter(())
    for i in track(range(num_steps), "LR range test", stream=sys.stderr):
        batch = next(stream, None)
        if batch is None:
            stream = batches.epoch(epoch)
            epoch += 1
            batch = next(stream)
        lr = start_lr * ratio**i
        value = float(training_step(opt, batch.inputs, batch.targets, batch.labels, lr, i).loss)
        if not math.isfinite(value):
            break
        smooth = 0.9 * smooth + 0.1 * value
        debiased = smooth / (1 - 0.9 ** (i + 1))
        lrs.append(lr)
        losses.append(debiased)
        best = min(best, debiased)
        if debiased > 4 * best:
            break
    suggestion = suggest_lr(np.array(lrs), np.array(losses))
    if out_dir is not None:
        _write(out_dir, lrs, losses, suggestion)
    return suggestion


def _write(out_dir: Path, lrs, losses, suggestion: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / runs.LR_FIND_JSON, json.dumps({"lr": lrs, "loss": losses, "suggested_lr": suggestion}))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(lrs, losses)
    ax.axvline(suggestion, color="tab:red", linestyle="--", label=f"suggested lr {suggestion:.3g}")
    ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss", title="LR range test")
    ax.legend()
    fig.tight_layout()
    with atomic_path(out_dir / runs.LR_FIND_PLOT) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
