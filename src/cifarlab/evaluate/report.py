"""Evaluate a model on one split and write its files; gather a run folder into report.md.

Files `evaluate_split` writes into `out_dir` for split `<s>`:
    eval_<s>.json            top1, top5, loss, ece, per-class accuracy by class name, tta, ...
    confusion_<s>.csv        first row "true\\pred" + class names; then one row per true class:
                             its name followed by the counts predicted as each class
    confusion_<s>.png        row-normalised confusion matrix
    misclassified_<s>.png    gallery of misclassified images, titled true/pred
    reliability_<s>.png      reliability diagram with the ECE
`write_report(run_dir)` turns whatever of these exists, plus recipe.yaml and metrics.jsonl
(drawn as curves.png), into report.md. Every file is written atomically.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from pathlib import Path
from typing import Sequence

import torch
from torch import Tensor, nn

from cifarlab.atomic import write_text
from cifarlab.errors import CifarlabError
from cifarlab.evaluate.calibration import expected_calibration_error, reliability
from cifarlab.evaluate.metrics import classification_metrics
from cifarlab.evaluate.plots import (
    plot_confusion,
    plot_curves,
    plot_misclassified,
    plot_reliability,
    read_metrics,
)
from cifarlab.evaluate.predict import predict

_SPLIT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _finite_or_none(values: Tensor) -> list[float | None]:
    return [v if math.isfinite(v) else None for v in values.tolist()]


def confusion_csv(confusion: Tensor, classes: Sequence[str]) -> str:
    """CSV text of a confusion matrix: header of class names, one labelled row per true class."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["true\\pred", *classes])
    for name, row in zip(classes, confusion.tolist()):
        writer.writerow([name, *row])
    return buffer.getvalue()


def _check_split_inputs(images: Tensor, labels: Tensor, classes: Sequence[str], split_name: str) -> Tensor:
    if not _SPLIT_NAME.match(split_name or ""):
        raise CifarlabError(f"split_name {split_name!r} is not usable in a file name; use letters, digits, _ - .")
    if len(set(classes)) != len(classes) or not classes:
        raise CifarlabError("classes must be a non-empty list of distinct names, one per model output")
    labels = torch.as_tensor(labels).long().cpu()
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise CifarlabError(f"{images.shape[0]} images but labels of shape {tuple(labels.shape)}; give one per image")
    return labels


def evaluate_split(
    model: nn.Module,
    images: Tensor,
    labels: Tensor,
    classes: Sequence[str],
    out_dir: str | os.PathLike,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    split_name: str,
    tta: str = "none",
    batch_size: int = 500,
    device: str | torch.device | None = None,
    resize: int | Sequence[int] | None = None,
    crop: int | Sequence[int] | None = None,
    channels_last: bool = False,
    autocast_dtype: torch.dtype | None = None,
    bins: int = 15,
    misclassified: int = 32,
) -> dict:
    """Predict `images` (uint8, N x C x H x W), score them against `labels`, write the split's files.

    Preprocessing arguments are those of `predict`. Returns what eval_<split>.json holds, plus
    `confusion` (C x C int64 tensor) and `probs` (N x C float32 tensor) for callers that need them.
    """
    labels = _check_split_inputs(images, labels, classes, split_name)
    out_dir = Path(out_dir)
    probs = predict(
        model, images, mean=mean, std=std, batch_size=batch_size, tta=tta, device=device,
        resize=resize, crop=crop, channels_last=channels_last, autocast_dtype=autocast_dtype,
    )
    scores = classification_metrics(probs, labels, len(classes))
    table = reliability(probs, labels, bins)
    files = {
        "eval": f"eval_{split_name}.json",
        "confusion_csv": f"confusion_{split_name}.csv",
        "confusion_png": f"confusion_{split_name}.png",
        "misclassified": f"misclassified_{split_name}.png",
        "reliability": f"reliability_{split_name}.png",
    }
    summary = {
        "split": split_name,
        "tta": tta,
        "num_images": int(labels.shape[0]),
        "num_classes": len(classes),
        "top1": scores["top1"],
        "top5": scores["top5"],
        "top5_k": min(5, len(classes)),
        "loss": scores["loss"],
        "ece": expected_calibration_error(probs, labels, bins),
        "per_class_accuracy": dict(zip(classes, scores["per_class_accuracy"])),
        "class_counts": dict(zip(classes, scores["class_counts"])),
        "reliability": {
            "bins": bins,
            "confidence": _finite_or_none(table["confidence"]),
            "accuracy": _finite_or_none(table["accuracy"]),
            "count": table["count"].tolist(),
        },
        "files": files,
    }
    write_text(out_dir / files["confusion_csv"], confusion_csv(scores["confusion"], classes))
    plot_confusion(scores["confusion"], classes, out_dir / files["confusion_png"])
    plot_misclassified(images, labels, probs.argmax(dim=1), classes, out_dir / files["misclassified"], n=misclassified)
    plot_reliability(probs, labels, out_dir / files["reliability"], bins=bins)
    # The JSON goes last: its presence says every other file of the split is complete.
    write_text(out_dir / files["eval"], json.dumps(summary, indent=2) + "\n")
    return {**summary, "confusion": scores["confusion"], "probs": probs}


# ---------------------------------------------------------------- report.md


def _percent(value) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else "-"


def _number(value, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def _load_evals(run_dir: Path) -> dict[str, dict]:
    evals = {}
    for path in sorted(run_dir.glob("eval_*.json")):
        try:
            evals[path.stem[len("eval_"):]] = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise CifarlabError(f"{path} is not valid JSON; delete it and evaluate that split again") from None
    order = {"val": 0, "test": 1}
    return dict(sorted(evals.items(), key=lambda item: (order.get(item[0], 2), item[0])))


def _training_rows(records: list[dict]) -> list[tuple[str, str]]:
    epochs = [r for r in records if r.get("kind") == "epoch"]
    steps = [r for r in records if r.get("kind") in ("step", "epoch") and isinstance(r.get("step"), int)]
    rows = []
    if epochs:
        rows.append(("epochs", f"{epochs[-1].get('epoch')}"))
    if steps:
        rows.append(("steps", f"{max(r['step'] for r in steps)}"))
    if epochs and isinstance(epochs[-1].get("loss"), (int, float)):
        rows.append(("final train loss", _number(epochs[-1]["loss"])))
    scored = [r for r in epochs if isinstance(r.get("val_top1"), (int, float))]
    if scored:
        best = max(scored, key=lambda r: r["val_top1"])
        rows.append(("final val top-1", _percent(scored[-1]["val_top1"])))
        rows.append(("best val top-1", f"{_percent(best['val_top1'])} (epoch {best.get('epoch')})"))
    timed = [r["time_s"] for r in epochs if isinstance(r.get("time_s"), (int, float))]
    if timed:  # each epoch record holds that epoch's time, validation included
        rows.append(("training time", f"{sum(timed):.1f} s"))
    return rows


def _eval_section(evals: dict[str, dict]) -> list[str]:
    lines = ["## Evaluation", "", "| split | TTA | images | top-1 | top-k | loss | ECE |", "|---|---|---|---|---|---|---|"]
    for split, e in evals.items():
        topk = f"{_percent(e.get('top5'))} (k={e.get('top5_k', 5)})"
        lines.append(f"| {split} | {e.get('tta', '-')} | {e.get('num_images', '-')} | {_percent(e.get('top1'))} "
                     f"| {topk} | {_number(e.get('loss'))} | {_percent(e.get('ece'))} |")
    classes = list(dict.fromkeys(name for e in evals.values() for name in e.get("per_class_accuracy", {})))
    if classes:
        lines += ["", "### Per-class accuracy", "", "| class | " + " | ".join(evals) + " |",
                  "|---|" + "---|" * len(evals)]
        for name in classes:
            cells = [_percent(e.get("per_class_accuracy", {}).get(name)) for e in evals.values()]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def _images_section(run_dir: Path, evals: dict[str, dict]) -> list[str]:
    shown, lines = set(), ["## Plots", ""]
    wanted = [("training curves", "curves.png")]
    for split in evals:
        wanted += [(f"{split}: confusion", f"confusion_{split}.png"),
                   (f"{split}: misclassified", f"misclassified_{split}.png"),
                   (f"{split}: reliability", f"reliability_{split}.png")]
    wanted += [(p.stem, p.name) for p in sorted(run_dir.glob("*.png"))]
    for title, name in wanted:
        if name not in shown and (run_dir / name).is_file():
            shown.add(name)
            lines += [f"### {title}", "", f"![{title}]({name})", ""]
    return lines if shown else []


def write_report(run_dir: str | os.PathLike) -> Path:
    """Gather a run folder (recipe.yaml, metrics.jsonl, eval_*.json, PNGs) into run_dir/report.md.

    Draws curves.png from metrics.jsonl when there is one; missing pieces are left out, so it
    works at any point of a run. Returns the path of report.md.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CifarlabError(f"run folder {run_dir} does not exist; pass the folder a run wrote")
    records = read_metrics(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").is_file() else []
    if records:
        plot_curves(run_dir / "metrics.jsonl", run_dir / "curves.png")
    evals = _load_evals(run_dir)
    recipe = run_dir / "recipe.yaml"
    lines = [f"# Run report: {run_dir.resolve().name}", ""]
    summary = _training_rows(records)
    for split in ("test", *[s for s in evals if s != "test"]):
        if split in evals:
            e = evals[split]
            summary += [(f"{split} top-1", _percent(e.get("top1"))), (f"{split} top-5", _percent(e.get("top5"))),
                        (f"{split} loss", _number(e.get("loss"))), (f"{split} ECE", _percent(e.get("ece")))]
    if summary:
        lines += ["## Summary", "", "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in summary] + [""]
    if evals:
        lines += _eval_section(evals)
    lines += _images_section(run_dir, evals)
    if recipe.is_file():
        lines += ["## Recipe", "", "```yaml", recipe.read_text().rstrip(), "```", ""]
    if len(lines) == 2:
        lines += ["Nothing to report yet: no metrics, evaluations or recipe in this folder.", ""]
    path = run_dir / "report.md"
    write_text(path, "\n".join(lines))
    return path
