"""Gather a run folder into report.md: training summary, evaluations, most confused classes, plots, recipe.

Every accuracy row says which model it scores and with which test-time augmentation, so the
validation accuracy seen during training (no TTA, the weights of that epoch) is never mistaken
for the final evaluation of the selected checkpoint.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cifarlab.atomic import write_text
from cifarlab.errors import CifarlabError
from cifarlab.evaluation.plots import plot_curves
from cifarlab.runs import (
    BEST,
    CURVES,
    LAST,
    METRICS,
    RECIPE,
    REPORT,
    ROBUSTNESS_JSON,
    ROBUSTNESS_PLOT,
    confusion_plot_file,
    misclassified_plot_file,
    read_evaluations,
    read_metrics,
    reliability_plot_file,
)
from cifarlab.tables import markdown_table


def _percent(value) -> str:
    return f"{100 * value:.2f}%" if isinstance(value, (int, float)) else "-"


def _number(value, digits: int = 4) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) else "-"


def tta_label(tta: str | None) -> str:
    """'no TTA' or 'tta <mode>', as the report writes it."""
    return "no TTA" if tta in (None, "none") else f"tta {tta}"


def model_label(split: str, evaluation: dict, run_dir: Path) -> str:
    """Which weights an evaluation scored: its own `model_label`, else what the run folder implies.

    Evaluations written without a label come from the final evaluation of a run, which scores
    best.pt when validation chose one and the last weights otherwise; `<split>_ema` scores the EMA.
    """
    if evaluation.get("model_label"):
        return str(evaluation["model_label"])
    if split.endswith("_ema"):
        return "EMA weights"
    if (run_dir / BEST).is_file():
        return "best checkpoint"
    if (run_dir / LAST).is_file():
        return "last checkpoint"
    return "evaluated model"


def _evaluation_label(split: str, evaluation: dict, run_dir: Path) -> str:
    return f"{model_label(split, evaluation, run_dir)}, {tta_label(evaluation.get('tta'))}"


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
    # Validation during training scores each epoch's own weights with no test-time augmentation.
    for key, weights in (("val_top1", ""), ("ema_val_top1", "EMA ")):
        scored = [r for r in epochs if isinstance(r.get(key), (int, float))]
        if scored:
            best = max(scored, key=lambda r: r[key])
            rows.append((f"{weights}val top-1 during training, last epoch (no TTA)", _percent(scored[-1][key])))
            rows.append((f"{weights}val top-1 during training, best epoch (no TTA)",
                         f"{_percent(best[key])} (epoch {best.get('epoch')})"))
    timed = [r["time_s"] for r in epochs if isinstance(r.get("time_s"), (int, float))]
    if timed:  # each epoch record holds that epoch's time, validation included
        rows.append(("training time", f"{sum(timed):.1f} s"))
    return rows


def _evaluation_rows(evals: dict[str, dict], run_dir: Path) -> list[tuple[str, str]]:
    rows = []
    for split in ("test", *[s for s in evals if s != "test"]):
        if split in evals:
            e = evals[split]
            label = _evaluation_label(split, e, run_dir)
            rows += [(f"{split} top-1 ({label})", _percent(e.get("top1"))),
                     (f"{split} top-{e.get('top5_k', 5)} ({label})", _percent(e.get("top5"))),
                     (f"{split} loss ({label})", _number(e.get("loss"))),
                     (f"{split} ECE ({label})", _percent(e.get("ece")))]
    return rows


# Each section is a list of lines joined by newlines; a table (ending in its own newline) is one
# entry, so the blank line after it comes with it.
def _evaluation_section(evals: dict[str, dict], run_dir: Path) -> list[str]:
    rows = [[split, model_label(split, e, run_dir), tta_label(e.get("tta")), f"{e.get('num_images', '-')}",
             _percent(e.get("top1")), f"{_percent(e.get('top5'))} (k={e.get('top5_k', 5)})", _number(e.get("loss")),
             _percent(e.get("ece"))] for split, e in evals.items()]
    lines = ["## Evaluation", "",
             markdown_table(["split", "model", "TTA", "images", "top-1", "top-k", "loss", "ECE"], rows)]
    classes = list(dict.fromkeys(name for e in evals.values() for name in e.get("per_class_accuracy", {})))
    if classes:
        rows = [[f"{name}"] + [_percent(e.get("per_class_accuracy", {}).get(name)) for e in evals.values()]
                for name in classes]
        lines += ["### Per-class accuracy", "", markdown_table(["class", *evals], rows)]
    return lines


def _most_confused_section(evals: dict[str, dict], run_dir: Path) -> list[str]:
    lines = []
    for split, e in evals.items():
        pairs = e.get("most_confused") or []
        if pairs:
            rows = [[f"{p['true']}", f"{p['predicted']}", f"{p['count']}"] for p in pairs]
            lines += [f"### {split} ({_evaluation_label(split, e, run_dir)})", "",
                      markdown_table(["true", "predicted", "images"], rows)]
    return ["## Most confused classes", ""] + lines if lines else []


def _images_section(run_dir: Path, evals: dict[str, dict]) -> list[str]:
    shown, lines = set(), ["## Plots", ""]
    wanted = [("training curves", CURVES)]
    for split in evals:
        wanted += [(f"{split}: confusion", confusion_plot_file(split)),
                   (f"{split}: highest-loss errors", misclassified_plot_file(split)),
                   (f"{split}: reliability", reliability_plot_file(split))]
    wanted += [(p.stem, p.name) for p in sorted(run_dir.glob("*.png")) if p.name != ROBUSTNESS_PLOT]
    for title, name in wanted:
        if name not in shown and (run_dir / name).is_file():
            shown.add(name)
            lines += [f"### {title}", "", f"![{title}]({name})", ""]
    return lines if shown else []


def _robustness_section(run_dir: Path) -> list[str]:
    """robustness.json (`cifarlab robustness eval`) as a table: top-1 per corruption and severity."""
    path = run_dir / ROBUSTNESS_JSON
    if not path.is_file():
        return []
    try:
        result = json.loads(path.read_text())
        severities = [str(s) for s in result["severities"]]
        lines = ["## Robustness to corruptions", "",
                 f"Scored on {result['source']} ({result['num_images']} images per severity), "
                 f"{result['model_label']}, {tta_label(result.get('tta'))}. mCE is the mean over corruptions of "
                 "the error averaged over severities; relative mCE is mCE minus the clean error.", "",
                 markdown_table([None, None], [["clean top-1", _percent(result["clean"]["top1"])],
                                               ["mean corrupted top-1", _percent(result["mean_corrupted_accuracy"])],
                                               ["mCE", _percent(result["mean_corruption_error"])],
                                               ["relative mCE", _percent(result["relative_mce"])]])]
        rows = [[f"{name}"] + [_percent(row.get(s)) for s in severities] + [_percent(result["mean_accuracy"].get(name))]
                for name, row in result["accuracy"].items()]
        # The ECE row has no mean: its last cell stays empty.
        rows.append(["ECE (all corruptions)"] + [_percent(result["ece_per_severity"].get(s)) for s in severities] + [None])
        lines.append(markdown_table(["corruption", *(f"severity {s}" for s in severities), "mean"], rows))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CifarlabError(f"{path} is damaged ({exc!r}); delete it and run `cifarlab robustness eval` "
                            "again") from None
    if (run_dir / ROBUSTNESS_PLOT).is_file():
        lines += [f"![robustness heatmap]({ROBUSTNESS_PLOT})", ""]
    return lines


def write_report(run_dir: str | os.PathLike) -> Path:
    """Gather a run folder (recipe.yaml, metrics.jsonl, eval_*.json, PNGs) into run_dir/report.md.

    Draws curves.png from metrics.jsonl when there is one; missing pieces are left out, so it
    works at any point of a run. Returns the path of report.md.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CifarlabError(f"run folder {run_dir} does not exist; pass the folder a run wrote")
    records = read_metrics(run_dir / METRICS) if (run_dir / METRICS).is_file() else []
    if records:
        plot_curves(run_dir / METRICS, run_dir / CURVES)
    evals = read_evaluations(run_dir)
    lines = [f"# Run report: {run_dir.resolve().name}", ""]
    summary = _training_rows(records) + _evaluation_rows(evals, run_dir)
    if summary:
        lines += ["## Summary", "", markdown_table([None, None], [[k, v] for k, v in summary])]
    if evals:
        lines += _evaluation_section(evals, run_dir) + _most_confused_section(evals, run_dir)
    lines += _robustness_section(run_dir)
    lines += _images_section(run_dir, evals)
    if (run_dir / RECIPE).is_file():
        lines += ["## Recipe", "", "```yaml", (run_dir / RECIPE).read_text().rstrip(), "```", ""]
    if len(lines) == 2:
        lines += ["Nothing to report yet: no metrics, evaluations or recipe in this folder.", ""]
    path = run_dir / REPORT
    write_text(path, "\n".join(lines))
    return path
