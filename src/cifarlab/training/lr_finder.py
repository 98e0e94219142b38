"""The LR range test (Smith 2017): raise the lr exponentially for a few steps and watch the loss.

It finds both bounds of a One-Cycle schedule, as ERA's seed asks ("LRMIN = FIND, LRMAX = FIND"):

- lr_max: where the smoothed loss falls fastest against log lr, before its minimum. The seed took its
  One-Cycle peak (5.34e-3) from its range-test tool's suggestion, which is this steepest-descent point;
  the other common rule, a tenth of the lr at the lowest loss, is recorded beside it for comparison.
- lr_min: where the loss starts to fall. Smith, "Cyclical Learning Rates for Training Neural Networks"
  (2017, section 3.3; the seed's reference 2) sets the lower bound at the lr where accuracy starts to
  rise in the range test; here, the first lr at which the smoothed loss has dropped by a tenth of its
  whole fall from its starting level. When that is not below lr_max, lr_min is lr_max / 10.

`cifarlab lr-find` runs it alone; `optim.lr: find` runs it before training and uses both bounds.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from cifarlab import runs
from cifarlab.atomic import make_dirs, write_text
from cifarlab.config.recipe import Recipe
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.errors import CifarlabError
from cifarlab.figures import save_figure
from cifarlab.progress import track
from cifarlab.training.losses import get_loss
from cifarlab.training.optim import build_optimizer
from cifarlab.training.step import Optimisation, training_step

ONSET_SHARE = 0.1  # share of the loss's whole fall that marks "the loss starts to fall" (lr_min)
LR_MAX_RULE = "steepest descent of the smoothed loss against log lr, before its minimum"
LR_MIN_RULE = f"first lr where the smoothed loss has fallen by {ONSET_SHARE:g} of its whole fall (Smith 2017, 3.3)"
LR_MIN_FALLBACK = "lr_max / 10 (the loss showed no fall that starts below lr_max)"


@dataclass
class LrFinding:
    """What one range test found: the lrs tried, the smoothed losses, and both One-Cycle bounds."""

    lrs: list[float]
    smoothed_losses: list[float]
    lr_max: float
    lr_min: float
    lr_min_rule: str
    lr_max_rule: str = LR_MAX_RULE
    min_loss_lr_over_10: Optional[float] = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def steepest_descent_lr(lrs: np.ndarray, losses: np.ndarray) -> float:
    """The lr where the smoothed loss falls fastest (steepest negative slope against log lr)."""
    if len(lrs) < 3:
        return float(lrs[0])
    slope = np.gradient(losses, np.log(lrs))
    # Ignore the last stretch, where the loss blows up.
    end = max(int(np.argmin(losses)), 2)
    return float(lrs[int(np.argmin(slope[:end]))])


def onset_lr(lrs: np.ndarray, losses: np.ndarray) -> Optional[float]:
    """The first lr at which the smoothed loss is below its start by ONSET_SHARE of its fall; None if flat.

    The start is the median of the first tenth of the test (at least 3 points), so one noisy early
    batch neither hides the fall nor fakes one.
    """
    lowest = int(np.argmin(losses))
    start = float(np.median(losses[: max(3, len(losses) // 10)]))
    fall = start - float(losses[lowest])
    if lowest == 0 or fall <= 0:
        return None
    below = np.nonzero(losses[: lowest + 1] <= start - ONSET_SHARE * fall)[0]
    return float(lrs[int(below[0])])


def choose_bounds(lrs: list[float], losses: list[float]) -> LrFinding:
    """lr_max and lr_min from a range test's lrs and smoothed losses (the rules in the module docstring)."""
    lr_array, loss_array = np.array(lrs), np.array(losses)
    lr_max = steepest_descent_lr(lr_array, loss_array)
    onset = onset_lr(lr_array, loss_array)
    if onset is not None and onset < lr_max:
        lr_min, rule = onset, LR_MIN_RULE
    else:
        lr_min, rule = lr_max / 10, LR_MIN_FALLBACK
    return LrFinding(lrs=list(lrs), smoothed_losses=list(losses), lr_max=lr_max, lr_min=lr_min, lr_min_rule=rule,
                     min_loss_lr_over_10=float(lr_array[int(np.argmin(loss_array))]) / 10)


def lr_range_test(recipe: Recipe, model: torch.nn.Module, batches: BatchPipeline, device: torch.device,
                  out_dir: Optional[Path], start_lr: float = 1e-7, end_lr: float = 10.0,
                  num_steps: int = 100) -> LrFinding:
    """Run the test on a copy of `model` (the model itself is left untouched); write lr_find.png/json.

    The steps are the run's own (`training_step` with the recipe's loss, precision, memory format,
    accumulation and clipping), on the run's training batches from a different epoch seed than training
    will use. It stops early once the smoothed loss passes 4x its lowest value.
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
    if not lrs:
        raise CifarlabError(f"the LR range test's first step at lr {start_lr:g} gave a NaN or infinite loss; "
                            "lower the start lr (--start) or use train.precision=fp32")
    finding = choose_bounds(lrs, losses)
    if out_dir is not None:
        write_lr_find(Path(out_dir), finding)
    return finding


def write_lr_find(out_dir: Path, finding: LrFinding) -> None:
    """lr_find.json (lrs, smoothed losses, both bounds and their rules) and lr_find.png, each written whole."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    make_dirs(out_dir)
    write_text(out_dir / runs.LR_FIND_JSON, json.dumps(finding.as_dict(), indent=1))
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(finding.lrs, finding.smoothed_losses)
    ax.axvline(finding.lr_max, color="tab:red", linestyle="--", label=f"lr_max {finding.lr_max:.3g} (steepest descent)")
    min_label = "loss starts to fall" if finding.lr_min_rule == LR_MIN_RULE else "lr_max / 10"
    ax.axvline(finding.lr_min, color="tab:green", linestyle=":", label=f"lr_min {finding.lr_min:.3g} ({min_label})")
    ax.set(xscale="log", xlabel="learning rate", ylabel="smoothed training loss", title="LR range test")
    ax.legend()
    fig.tight_layout()
    save_figure(fig, out_dir / runs.LR_FIND_PLOT, dpi=100)
    plt.close(fig)
