"""Score a run on every corruption x severity: accuracy, mean corruption error, ECE per severity.

Definitions (errors are 1 - top-1 accuracy):
- corruption error of a corruption: its error averaged over the severities scored;
- `mean_corruption_error` (mCE): the mean of those over the corruptions scored. Unlike the
  benchmark's mCE it is not divided by AlexNet's errors (no reference model is assumed);
- `relative_mce`: mCE minus the clean error, how much error the corruptions add;
- `ece_per_severity`: ECE (15 bins) over the images of all corruptions at that severity.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Optional

import torch
from torch import Tensor

from cifarlab import runs
from cifarlab.atomic import write_text
from cifarlab.data import load_dataset
from cifarlab.errors import CifarlabError
from cifarlab.evaluation import run_settings, score_split, write_report
from cifarlab.evaluation.tta import check_tta_mode
from cifarlab.robustness import dataset
from cifarlab.robustness.corruptions import (
    BENCHMARK,
    SEVERITIES,
    check_corruption,
    check_severity,
    corrupt,
)
from cifarlab.training.allocator import allocator_setting
from cifarlab.training.distributed import pick_device

BINS = 15


def _ece(confidence: Tensor, correct: Tensor, bins: int = BINS) -> float:
    """ECE from top-1 confidences and correctness, with the bins of cifarlab.evaluation.calibration."""
    edges = torch.linspace(0.0, 1.0, bins + 1, dtype=confidence.dtype)
    index = torch.bucketize(confidence, edges[1:-1], right=False)
    count = torch.bincount(index, minlength=bins).double()
    gap = torch.zeros(bins, dtype=torch.float64).index_add_(0, index, correct.double() - confidence.double())
    return float(gap.abs().sum() / count.sum().clamp(min=1))


def summarise(accuracy: dict[str, dict[str, float]], clean_top1: float) -> dict:
    """Mean accuracy per corruption, mCE, mean corrupted accuracy and relative mCE of an accuracy table."""
    mean_accuracy = {name: sum(row.values()) / len(row) for name, row in accuracy.items()}
    mce = sum(1 - value for value in mean_accuracy.values()) / len(mean_accuracy)
    return {
        "mean_accuracy": mean_accuracy,
        "mean_corruption_error": mce,
        "mean_corrupted_accuracy": 1 - mce,
        "clean_error": 1 - clean_top1,
        "relative_mce": mce - (1 - clean_top1),
    }


def evaluate_robustness(
    run_dir: str | os.PathLike,
    *,
    data: Optional[str | os.PathLike] = None,
    corruptions: Optional[Sequence[str]] = None,
    severities: Sequence[int] = SEVERITIES,
    tta: Optional[str] = None,
    limit: Optional[int] = None,
    seed: int = 0,
    device: str = "auto",
    on_scored: Optional[Callable[[str, int, float], None]] = None,
) -> dict:
    """Score a run's model (best.pt, else last.pt) on corrupted copies of its test set; write nothing.

    `data` is a corrupted-set folder (`cifarlab robustness make`, or the published CIFAR-10-C /
    CIFAR-100-C); without it the run's test set is corrupted here with `seed`. `corruptions`
    defaults to the 15 of the benchmark (with `data`, those of them the folder holds, or its
    extra ones when it holds none of the 15); `limit` keeps
    N evenly spaced images of the clean test set and of each severity (`dataset.spaced_indices`);
    `tta` defaults to the recipe's. Every image is preprocessed as the run's test images are, a
    corrupted one after its corruption (CLAHE too, when the run trained with it). The model runs on
    `device` (`auto`: the GPU if there is one); corruptions are made on the CPU. `on_scored(name, severity, top1)` is called after
    each cell. Returns robustness.json's content.
    """
    run = runs.load_run(run_dir)
    with allocator_setting(run.recipe.train.allocator):  # up to 95 cells of evaluation batches: keep their memory
        return _score_corruptions(run, data, corruptions, severities, tta, limit, seed, device, on_scored)


def _score_corruptions(run: runs.Run, data: Optional[str | os.PathLike], corruptions: Optional[Sequence[str]],
                       severities: Sequence[int], tta: Optional[str], limit: Optional[int], seed: int, device: str,
                       on_scored: Optional[Callable[[str, int, float], None]]) -> dict:
    recipe = run.recipe
    tta = check_tta_mode(tta or recipe.eval.tta)
    severities = [check_severity(s) for s in severities]
    names = _corruption_names(data, corruptions)
    model = run.model.to(pick_device(device))
    clean_images, clean_labels, labels = _clean_and_labels(run, data, limit)
    # As the run's own test evaluation: its precision, memory format and preprocessing, so the clean top-1 is
    # run.test's; a corrupted image is equalised after it is corrupted, as a deployed model would receive it.
    settings = run_settings(model, recipe, run.mean, run.std, tta=tta)
    clean = score_split(model, clean_images, clean_labels, run.classes, settings).summary
    accuracy: dict[str, dict[str, float]] = {}
    ece: dict[str, dict[str, float]] = {}
    pooled = {s: ([], []) for s in severities}
    for name in names:
        accuracy[name], ece[name] = {}, {}
        for severity in severities:
            images = _corrupted(data, name, severity, limit, clean_images, seed, labels)
            scored = score_split(model, images, labels, run.classes, settings)
            accuracy[name][str(severity)] = scored.summary["top1"]
            ece[name][str(severity)] = scored.summary["ece"]
            confidence, predicted = scored.probs.max(dim=1)
            pooled[severity][0].append(confidence)
            pooled[severity][1].append(predicted == labels)
            if on_scored:
                on_scored(name, severity, scored.summary["top1"])
    return {
        "dataset": recipe.data.dataset,
        "source": str(data) if data is not None else f"the run's test set, corrupted with seed {seed}",
        "model_label": run.checkpoint_path.name,
        "tta": tta,
        "num_images": int(labels.shape[0]),
        "severities": severities,
        "corruptions": names,
        "clean": {"top1": clean["top1"], "ece": clean["ece"], "loss": clean["loss"]},
        "accuracy": accuracy,
        "ece": ece,
        "ece_per_severity": {str(s): _ece(torch.cat(conf), torch.cat(hit)) for s, (conf, hit) in pooled.items()},
        **summarise(accuracy, clean["top1"]),
    }


def _corruption_names(data: Optional[str | os.PathLike], corruptions: Optional[Sequence[str]]) -> list[str]:
    """The corruptions to score: those asked for, else the benchmark's 15 (of those `data` holds)."""
    if data is None:
        return [check_corruption(name) for name in (corruptions or BENCHMARK)]
    names = dataset.corruptions_in(data, corruptions)
    # The benchmark's mCE averages its 15; the 4 extra count only when asked for or alone.
    if not corruptions and any(name in BENCHMARK for name in names):
        names = [name for name in names if name in BENCHMARK]
    return names


def _clean_and_labels(run: runs.Run, data: Optional[str | os.PathLike], limit: Optional[int]) -> tuple[Tensor, Tensor, Tensor]:
    """The clean test images and labels kept (`limit`), and the labels of the corrupted images."""
    test = load_dataset(run.recipe.data.dataset, run.recipe.data.root)
    chosen = dataset.spaced_indices(len(test.test_labels), limit)
    clean_images, clean_labels = test.test_images[chosen], test.test_labels[chosen]
    labels = dataset.read_labels(data, limit) if data is not None else clean_labels
    if labels.numel() and int(labels.max()) >= len(run.classes):
        raise CifarlabError(f"{data} has labels up to {int(labels.max())} but the run's model has {len(run.classes)} "
                            "classes; use the corrupted set of the run's own dataset")
    return clean_images, clean_labels, labels


def _corrupted(data: Optional[str | os.PathLike], name: str, severity: int, limit: Optional[int], clean_images: Tensor,
               seed: int, labels: Tensor) -> Tensor:
    """The uint8 images of one corruption and severity: read from `data`, else made here from the clean images."""
    if data is None:
        return corrupt(clean_images, name, severity, seed)
    images = dataset.read_corruption(data, name, severity, limit)
    if images.shape[0] != labels.shape[0]:
        raise CifarlabError(f"{data}/{dataset.corruption_file(name)} has {images.shape[0]} images per "
                            f"severity but {dataset.LABELS} has {labels.shape[0]}; write the set again")
    return images


def write_robustness(run_dir: str | os.PathLike, result: dict) -> list[Path]:
    """Write robustness.json and its heatmap into a run folder and refresh its report.md."""
    from cifarlab.robustness.heatmap import (
        plot_robustness,  # matplotlib only when writing
    )

    run_dir = Path(run_dir)
    write_text(run_dir / runs.ROBUSTNESS_JSON, json.dumps(result, indent=2) + "\n")
    plot = plot_robustness(result, run_dir / runs.ROBUSTNESS_PLOT)
    report = write_report(run_dir)
    return [run_dir / runs.ROBUSTNESS_JSON, plot, report]


def read_robustness(run_dir: str | os.PathLike) -> Optional[dict]:
    """A run folder's robustness.json, None when it has none."""
    path = Path(run_dir) / runs.ROBUSTNESS_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise CifarlabError(f"{path} is not valid JSON; delete it and run `cifarlab robustness eval` again") from None


def format_table(result: dict) -> str:
    """The accuracy table as aligned text: one row per corruption, one column per severity, then the mean."""
    severities = [str(s) for s in result["severities"]]
    width = max(len(name) for name in result["accuracy"]) + 2
    lines = ["corruption".ljust(width) + "".join(f"{s:>8}" for s in severities) + f"{'mean':>8}"]
    for name, row in result["accuracy"].items():
        cells = "".join(f"{100 * row[s]:7.2f}%" for s in severities)
        lines.append(name.ljust(width) + cells + f"{100 * result['mean_accuracy'][name]:7.2f}%")
    lines.append("ECE".ljust(width) + "".join(f"{100 * result['ece_per_severity'][s]:7.2f}%" for s in severities))
    lines.append(f"clean top-1 {100 * result['clean']['top1']:.2f}%  mean corrupted top-1 "
                 f"{100 * result['mean_corrupted_accuracy']:.2f}%  mCE {100 * result['mean_corruption_error']:.2f}%  "
                 f"relative mCE {100 * result['relative_mce']:+.2f}%")
    return "\n".join(lines)
