"""The end of a run (scoring its best checkpoint on each split, then the report) and evaluating a saved run."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Optional

from cifarlab import runs
from cifarlab.config.recipe import Recipe
from cifarlab.data.prepare import Splits, split_images
from cifarlab.evaluation import evaluate_split, write_report
from cifarlab.evaluation.settings import run_settings
from cifarlab.runs import checkpoint as ckpt_io
from cifarlab.training.allocator import allocator_setting
from cifarlab.training.loop import Trainer


def final_evaluation(recipe: Recipe, trainer: Trainer, splits: Splits, run_dir: Path) -> Optional[dict]:
    """Evaluate the best-on-validation model (the last one without validation) and write report.md."""
    model = trainer.model
    best = run_dir / runs.BEST
    weights_label = "last weights"
    if best.is_file():
        ckpt_io.load_model_state(model, ckpt_io.load_checkpoint(best)["model"], str(best))
        weights_label = "best checkpoint"
    settings = run_settings(model, recipe, splits.mean, splits.std)
    test = None
    evaluations = []
    if len(splits.val_images):
        evaluations.append(("val", model, weights_label, splits.val_images, splits.val_labels))
    if recipe.eval.test:
        evaluations.append(("test", model, weights_label, splits.test_images, splits.test_labels))
        if trainer.ema is not None:
            evaluations.append(("test_ema", trainer.ema.module, "EMA weights", splits.test_images, splits.test_labels))
    for split, evaluated, label, images, labels in evaluations:
        result = evaluate_split(evaluated, images, labels, splits.classes, run_dir, replace(settings, split=split),
                                model_label=label)
        trainer.callbacks.call("on_eval", trainer, split, result)
        if split == "test":
            test = result
    if recipe.train.export_npz:
        from cifarlab.models.bit_weights import save_npz

        save_npz(model, run_dir / runs.WEIGHTS_NPZ)
    write_report(run_dir)
    return test


def evaluate_saved(run_or_checkpoint: str | Path, split: str = "test", tta: Optional[str] = None) -> dict:
    """Evaluate a finished run's best checkpoint (or a given .pt) on `split`; refresh its report.md."""
    path = ckpt_io.resolve_checkpoint(run_or_checkpoint)
    run_dir = path.parent
    run = runs.load_run(path)  # refuses a folder that is not a run, naming the missing recipe.yaml
    recipe = run.recipe
    _, images, labels = split_images(recipe.data, recipe.seed, split, f"run {run_dir}")
    settings = run_settings(run.model, recipe, run.mean, run.std, split=split, tta=tta)
    with allocator_setting(recipe.train.allocator):
        result = evaluate_split(run.model, images, labels, run.classes, run_dir, settings, model_label=path.name)
    write_report(run_dir)
    return result
