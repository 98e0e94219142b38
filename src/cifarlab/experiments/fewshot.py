"""Few-shot transfer sweeps (BiT): one run per (weights, shots, seed), then a table and a Figure-6 plot.

Each run takes `shots` examples per class from the full training set with its own seed (saved in the
run's indices.json), fine-tunes with BiT-HyperRule and is evaluated on the whole test set. Finished
runs are skipped on a re-run and interrupted ones resume, so a sweep can be stopped and continued.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from dataclasses import replace
from pathlib import Path
from typing import Optional

from cifarlab.atomic import write_text
from cifarlab.config.recipe import Recipe
from cifarlab.data.sources import load_dataset
from cifarlab.errors import CifarlabError
from cifarlab.experiments.figure6 import paper_value, plot_figure6
from cifarlab.experiments.grid import Point
from cifarlab.experiments.run import run_recipe
from cifarlab.experiments.sweep import RUNS, WALL_FILE, Outcome, run_points, wall_time
from cifarlab.models import model_for_weights
from cifarlab.models.bit_weights import OFFICIAL_NAMES
from cifarlab.runs import eval_file
from cifarlab.transfer import hyperrule

__all__ = ["FIELDS", "WALL_FILE", "run_recipe_for", "run_sweep", "summarise", "weights_label", "write_results"]

FIELDS = ["weights", "model", "shots", "seed", "top1", "top5", "steps", "wall_s", "run"]


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
    recipe = replace(base, model=model, seed=seed, name=f"{weights_label(weights)}_{shots}shot_seed{seed}",
                     data=replace(base.data, val_size=0, full_train=False, examples_per_class=shots, subset_seed=seed))
    if not fs.hyperrule:
        return recipe
    overrides = {k: v for k, v in (("precrop", fs.precrop), ("crop", fs.crop)) if v is not None}
    if fs.boundaries is not None:
        overrides["boundaries"] = tuple(fs.boundaries)
    rule = hyperrule(shots * num_classes, image_size, batch_size=base.train.batch_size, base_lr=fs.base_lr, **overrides)
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


def _train(recipe: Recipe, resume: Optional[Path] = None, **options):
    return run_recipe(recipe, resume=resume, **options)  # looked up at call time, so tests can stand in for it


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

    run_points(points, runs_dir, runner=_train, on_done=record)
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
    """Median, min and max test accuracy per (weights, shots), with the paper's value for `dataset` where there is one."""
    groups: dict[tuple, list[float]] = {}
    for row in rows:
        groups.setdefault((row["weights"], int(row["shots"])), []).append(float(row["top1"]))
    return [{"weights": w, "shots": s, "runs": len(v), "median": round(statistics.median(v), 2),
             "min": min(v), "max": max(v), "paper": paper_value(w, s, dataset)} for (w, s), v in sorted(groups.items())]


def write_results(out_dir: Path, rows: list[dict], dataset: str = "cifar10") -> None:
    """results.csv, summary.md (with Figure 6's values for `dataset`) and figure6.png of the runs so far."""
    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    write_text(out_dir / "results.csv", buf.getvalue())
    summary = summarise(rows, dataset)
    lines = ["| weights | shots | runs | median top-1 (%) | min | max | paper (Fig. 6) |", "|---|---|---|---|---|---|---|"]
    for r in summary:
        paper = f"{r['paper']:.1f}" if r["paper"] is not None else "-"
        lines.append(f"| {r['weights']} | {r['shots']} | {r['runs']} | {r['median']:.2f} | {r['min']:.2f} | {r['max']:.2f} | {paper} |")
    write_text(out_dir / "summary.md", "\n".join(lines) + "\n")
    plot_figure6(summary, rows, out_dir / "figure6.png", dataset)
