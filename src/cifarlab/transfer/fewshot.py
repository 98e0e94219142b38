"""Few-shot transfer sweeps (BiT): one run per (weights, shots, seed), then a table and a Figure-6 plot.

Each run takes `shots` examples per class from the full training set with its own seed (saved in the
run's indices.json), fine-tunes with BiT-HyperRule and is evaluated on the whole test set. Finished
runs are skipped on a re-run and interrupted ones resume, so a sweep can be stopped and continued.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Optional

from cifarlab.atomic import write_text
from cifarlab.config.recipe import Recipe
from cifarlab.data.sources import load_dataset
from cifarlab.errors import CifarlabError
from cifarlab.models import model_for_weights
from cifarlab.models.bit_weights import OFFICIAL_NAMES
from cifarlab.runner.run import run_recipe
from cifarlab.runs import WALL_FILE, eval_file
from cifarlab.sweeps.grid import Point
from cifarlab.sweeps.sweep import RUNS, run_points
from cifarlab.sweeps.sweep_point import Outcome, wall_time
from cifarlab.tables import csv_text, markdown_table
from cifarlab.transfer import hyperrule
from cifarlab.transfer.figure6 import paper_value, plot_figure6
from cifarlab.transfer.step_lines import StepScoreLines

__all__ = ["FIELDS", "SUMMARY_FIELDS", "WALL_FILE", "run_recipe_for", "run_sweep", "summarise", "summary_markdown",
           "weights_label", "write_results"]

FIELDS = ["weights", "model", "shots", "seed", "top1", "top5", "steps", "wall_s", "run"]
SUMMARY_FIELDS = ["weights", "shots", "runs", "mean", "sd", "median", "min", "max", "paper"]


def weights_label(weights: str) -> str:
    """How a sweep names its weights: the official name, "scratch", or the .npz file (its run folder for weights.npz)."""
    if not weights.endswith(".npz"):
        return weights
    path = Path(weights)
    return path.parent.name if path.stem == "weights" and path.parent.name else path.stem


def run_recipe_for(base: Recipe, weights: str, shots: int, seed: int, num_classes: int, image_size: int) -> Recipe:
    """The recipe of one few-shot run: the base recipe with the HyperRule and this run's subset."""
    fs = base.fewshot
    model = base.model
    if weights in OFFICIAL_NAMES:
        model = replace(model, name=model_for_weights(weights), options={}, weights=weights)
    elif weights == "scratch":
        model = replace(model, weights=None)
    else:
        if not Path(weights).is_file():
            raise CifarlabError(f"few-shot weights {weights!r} is neither an official name ({', '.join(OFFICIAL_NAMES[:2])}, "
                                "...) nor an existing .npz file; fix fewshot.weights or --weights")
        model = replace(model, weights=str(Path(weights).resolve()))
    # fewshot.eval_every only prints test scores: kept out of the run's recipe, so turning it on or off
    # never makes a finished or stopped run look changed to the sweep.
    recipe = replace(base, model=model, seed=seed, name=f"{weights_label(weights)}_{shots}shot_seed{seed}",
                     data=replace(base.data, val_size=0, full_train=False, examples_per_class=shots, subset_seed=seed),
                     fewshot=replace(fs, eval_every=0))
    if not fs.hyperrule:
        return recipe
    overrides = {k: v for k, v in (("precrop", fs.precrop), ("crop", fs.crop)) if v is not None}
    if fs.boundaries is not None:
        overrides["boundaries"] = tuple(fs.boundaries)
    rule = hyperrule(shots * num_classes, image_size, batch_size=base.train.batch_size, base_lr=fs.base_lr,
                     lr_scaling=fs.lr_scaling, **overrides)
    resize = rule.precrop if rule.precrop != image_size else None
    return replace(
        recipe,
        augment=replace(base.augment, resize=resize, crop=rule.crop, crop_padding=0, flip="random",
                        cutout=0, mixup_alpha=rule.mixup_alpha, cutmix_alpha=0.0),
        optim=replace(base.optim, name="sgd", lr=rule.lr, momentum=rule.momentum, nesterov=False,
                      weight_decay=rule.weight_decay, scale_lr_batch=None),
        schedule=replace(base.schedule, name="hyperrule", boundaries=list(rule.boundaries)),
        train=replace(base.train, steps=rule.total_steps),
    )


def _test_scores(run_dir: Path) -> dict:
    return json.loads((run_dir / eval_file("test")).read_text())


def sweep_points(base: Recipe, runs_dir: Path) -> list[Point]:
    """One point per (weights, shots, seed) of `base.fewshot`, its recipe made by `run_recipe_for`."""
    fs = base.fewshot
    if not fs.weights:
        raise CifarlabError("the sweep has no weights: pass --weights BiT-M-R50x1 (or a .npz, or scratch)")
    ds = load_dataset(base.data.dataset, root=base.data.root)
    image_size = ds.train_images.shape[-1]
    points = []
    for weights in fs.weights:
        for shots in fs.shots:
            for seed in range(fs.seeds):
                recipe = run_recipe_for(base, weights, shots, seed, len(ds.classes), image_size)
                recipe = replace(recipe, out_dir=str(runs_dir))
                points.append(Point(name=recipe.name, values={"weights": weights_label(weights), "shots": str(shots),
                                                              "seed": str(seed)}, recipe=recipe))
    return points


def _runner(base: Recipe) -> Callable:
    """How each run is trained: `run_recipe`, plus the test-score lines when `fewshot.eval_every` is on."""
    every = base.fewshot.eval_every
    if not every:
        return run_recipe
    test = load_dataset(base.data.dataset, root=base.data.root)

    def train_showing_test_scores(recipe: Recipe, resume: Optional[Path] = None, **options):
        lines = StepScoreLines(every, test.test_images, test.test_labels, test.classes)
        return run_recipe(recipe, resume=resume, callbacks=[lines], **options)

    return train_showing_test_scores


def run_sweep(base: Recipe, out_dir: Path) -> Path:
    """Run every (weights, shots, seed) of `base.fewshot` under `out_dir`; write results and plot."""
    out_dir = Path(out_dir)
    runs_dir = out_dir / RUNS
    points = sweep_points(base, runs_dir)
    rows: dict[str, dict] = {}

    def record(outcome: Outcome) -> None:
        if outcome.status == "finished":
            rows[outcome.point.name] = _row(outcome)
            write_results(out_dir, [rows[p.name] for p in points if p.name in rows], base.data.dataset)

    run_points(points, runs_dir, runner=_runner(base), on_done=record)
    return out_dir


def _row(outcome: Outcome) -> dict:
    result = _test_scores(outcome.run_dir)
    recipe, values = outcome.point.recipe, outcome.point.values
    return {"weights": values["weights"], "model": recipe.model.name, "shots": int(values["shots"]),
            "seed": int(values["seed"]), "top1": round(100 * result["top1"], 2), "top5": round(100 * result["top5"], 2),
            "steps": recipe.train.steps, "wall_s": _rounded(wall_time(outcome.run_dir)), "run": outcome.run_dir.name}


def _rounded(seconds: Optional[float]):
    return "" if seconds is None else round(seconds, 1)


def summarise(rows: list[dict], dataset: str = "cifar10") -> list[dict]:
    """Mean, sd, median, min and max test top-1 per (weights, shots), with Figure 6's value for `dataset`.

    Both centres: seeds/001 reports and plots each setting's mean, and five runs are few enough
    that one bad subset moves the mean well away from the median.
    """
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault((row["weights"], int(row["shots"])), []).append(float(row["top1"]))
    return [{"weights": w, "shots": s, "runs": len(v), "mean": round(statistics.mean(v), 2),
             "sd": round(statistics.stdev(v), 2) if len(v) > 1 else None, "median": round(statistics.median(v), 2),
             "min": min(v), "max": max(v), "paper": paper_value(w, s, dataset)} for (w, s), v in sorted(groups.items())]


def summary_markdown(summary: list[dict]) -> str:
    """The summary as a Markdown table; "-" where a value is missing (sd of one run, no paper value)."""
    def cell(value, digits: int) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    headings = ["weights", "shots", "runs", "mean top-1 (%)", "sd", "median", "min", "max", "paper (Fig. 6)"]
    return markdown_table(headings, [[str(r["weights"]), str(r["shots"]), str(r["runs"])]
                                     + [cell(r[key], 2) for key in ("mean", "sd", "median", "min", "max")]
                                     + [cell(r["paper"], 1)] for r in summary])


def write_results(out_dir: Path, rows: list[dict], dataset: str = "cifar10") -> None:
    """results.csv, summary.csv and summary.md (with Figure 6's values for `dataset`) and figure6.png so far."""
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text(out_dir / "results.csv", csv_text(rows, FIELDS))
    summary = summarise(rows, dataset)
    write_text(out_dir / "summary.csv", csv_text(summary, SUMMARY_FIELDS))
    write_text(out_dir / "summary.md", summary_markdown(summary))
    plot_figure6(summary, rows, out_dir / "figure6.png", dataset)
