"""One table row per run folder: test scores, best validation accuracy, model size and training cost.

Sweeps (results.csv) and `cifarlab report` both describe runs with these rows, so the two always
agree on what a column means. Accuracies are percentages; times are seconds.
"""

from __future__ import annotations

import statistics
from typing import Optional

import torch
from torch import nn

from cifarlab.models import create
from cifarlab.models.layers import CIFAR_INPUT_SIZE
from cifarlab.models.summary import count_parameters, multiply_adds
from cifarlab.robustness.evaluation import read_robustness
from cifarlab.runs import Run
from cifarlab.runs.checkpoint import load_checkpoint


def _percent(value) -> Optional[float]:
    return None if value is None else round(100 * float(value), 2)


def _rounded(value, digits: int) -> Optional[float]:
    return None if value is None else round(float(value), digits)


def scores(run: Run) -> dict:
    """Test top-1/top-5 (%), loss and ECE from eval_test.json (None when the test set was not scored),
    and the best validation top-1 (%) over the epochs."""
    test = run.test or {}
    val_top1 = [r["val_top1"] for r in run.history if r.get("val_top1") is not None]
    return {
        "test_top1": _percent(test.get("top1")),
        "test_top5": _percent(test.get("top5")),
        "test_loss": _rounded(test.get("loss"), 4),
        "test_ece": _rounded(test.get("ece"), 4),
        "val_best_top1": _percent(max(val_top1)) if val_top1 else None,
    }


def training_cost(run: Run) -> dict:
    """Training time (sum of the epochs' time_s, so resumed runs count each part once) and median images/s."""
    times = [r["time_s"] for r in run.history if r.get("time_s") is not None]
    speeds = [r["images_per_s"] for r in run.history if r.get("images_per_s") is not None]
    return {
        "train_time_s": round(sum(times), 3) if times else None,
        "images_per_s": round(statistics.median(speeds)) if speeds else None,
    }


def _num_classes(run: Run) -> Optional[int]:
    for evaluation in run.evaluations.values():
        if evaluation.get("num_classes"):
            return int(evaluation["num_classes"])
    if run.checkpoints:  # a run stopped before its evaluation: its checkpoint knows
        return int(load_checkpoint(run.checkpoint_path)["num_classes"])
    return None


def model_size(run: Run, with_macs: bool = True) -> dict:
    """Parameters and multiply-adds per image of the run's model, counted on the meta device (no memory, no
    arithmetic) where it can be built and run there, else on the CPU; None for a run that does not say its
    model or its class count."""
    num_classes = _num_classes(run)
    if run.recipe is None or num_classes is None:
        return {"params": None, "macs": None}
    model_config = run.recipe.model
    side = run.recipe.augment.crop or run.recipe.augment.resize

    def count(model: nn.Module) -> dict:
        input_size = (3, side, side) if side else tuple(getattr(model, "input_size", CIFAR_INPUT_SIZE))
        return {"params": count_parameters(model), "macs": multiply_adds(model, input_size) if with_macs else None}

    try:
        with torch.device("meta"):
            return count(create(model_config.name, num_classes=num_classes, **model_config.options))
    except (RuntimeError, NotImplementedError):
        # A model that fills or copies weights while being built (`.item()`, pretrained timm weights) or an
        # operator without a meta kernel: the same counts from a real untrained copy, built once.
        return count(create(model_config.name, num_classes=num_classes, **model_config.options))


def robustness(run: Run) -> dict:
    """Mean accuracy over corruptions and severities and mCE (%), from robustness.json when the run has one."""
    summary = read_robustness(run.dir) or {}
    return {"corrupted_top1": _percent(summary.get("mean_corrupted_accuracy")),
            "mce": _percent(summary.get("mean_corruption_error"))}


def run_row(run: Run, with_macs: bool = True) -> dict:
    """name, model, scores, size and cost of one run; missing values are None."""
    row = {"name": run.dir.name, "model": run.recipe.model.name if run.recipe else None}
    row.update(scores(run))
    row.update(model_size(run, with_macs))
    row.update(training_cost(run))
    row.update(robustness(run))
    row["run"] = str(run.dir)
    return row
