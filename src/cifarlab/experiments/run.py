"""One run from a recipe: run folder, data, model, training, final evaluation and report."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from cifarlab.atomic import write_text
from cifarlab.config import load_recipe, recipe_to_yaml
from cifarlab.config.recipe import Recipe
from cifarlab.data.prepare import Splits, prepare_splits
from cifarlab.errors import CifarlabError
from cifarlab.evaluate import evaluate_split, write_report
from cifarlab.models import create
from cifarlab.train import checkpoint as ckpt_io
from cifarlab.train.distributed import Placement, barrier, setup, teardown
from cifarlab.train.loop import Trainer
from cifarlab.train.sinks import ConsoleProgress, JsonlSink, TensorBoardSink


@dataclass
class RunResult:
    run_dir: Path
    status: str  # finished or stopped
    test: Optional[dict] = None


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def new_run_dir(recipe: Recipe) -> Path:
    """runs/<name>, or runs/<name>-2, -3 ... when that folder already holds a run."""
    base = Path(recipe.out_dir) / recipe.name
    path, n = base, 1
    while path.exists() and any(path.iterdir()):
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def build_model(recipe: Recipe, num_classes: int) -> torch.nn.Module:
    options = dict(recipe.model.options)
    if recipe.model.weights:
        options["weights"] = recipe.model.weights
    return create(recipe.model.name, num_classes=num_classes, **options)


def model_stats(model) -> Optional[tuple]:
    """Models trained elsewhere (BiT) bring their own normalisation; others use the data's own."""
    pre = getattr(model, "preprocessing", None)
    return (pre["mean"], pre["std"]) if pre else None


def run_recipe(recipe: Recipe, resume: Optional[Path] = None, stop_after: Optional[int] = None,
               progress_stream=None) -> RunResult:
    """Train `recipe` (or continue the run in `resume`), then evaluate and write the report."""
    place = setup(recipe.train.device)
    try:
        return _run(recipe, place, resume, stop_after, progress_stream)
    finally:
        teardown(place)


def _run(recipe, place: Placement, resume, stop_after, progress_stream) -> RunResult:
    run_dir = Path(resume) if resume else new_run_dir(recipe)
    if place.world_size > 1 and not resume:
        run_dir = Path(recipe.out_dir) / recipe.name  # every rank must agree without looking at the disk
    seed_everything(recipe.seed)
    splits = prepare_splits(recipe.data, recipe.seed)
    model = build_model(recipe, splits.num_classes)
    stats = model_stats(model)
    if stats:
        splits = replace(splits, mean=tuple(stats[0]), std=tuple(stats[1]))
    if recipe.optim.lr == "find":
        recipe = _find_lr(recipe, model, splits, place, run_dir)
    if place.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "recipe.yaml", recipe_to_yaml(recipe))
        write_text(run_dir / "indices.json", json.dumps(splits.indices_record()))
    barrier(place)
    sinks = [JsonlSink(run_dir / "metrics.jsonl"), TensorBoardSink(run_dir / "tensorboard"),
             ConsoleProgress(f"{recipe.name} {recipe.model.name}", stream=progress_stream)] if place.is_main else []
    trainer = Trainer(recipe, model, splits, place, run_dir, sinks)
    if resume:
        trainer.restore(ckpt_io.resolve_checkpoint(run_dir, prefer="last.pt"))
    try:
        status = trainer.fit(stop_after=stop_after)
    finally:
        for sink in sinks:
            sink.close()
    result = RunResult(run_dir, status)
    if status == "finished" and place.is_main:
        result.test = final_evaluation(recipe, trainer, splits, run_dir)
    barrier(place)
    return result


def _find_lr(recipe, model, splits, place, run_dir) -> Recipe:
    from cifarlab.train.lr_finder import lr_range_test

    found = lr_range_test(recipe, model, splits, place.device, run_dir if place.is_main else None)
    return replace(recipe, optim=replace(recipe.optim, lr=float(f"{found:.3g}")))


def eval_geometry(recipe: Recipe) -> dict:
    side = recipe.augment.crop or recipe.augment.resize
    return {"resize": side} if side else {}


def final_evaluation(recipe: Recipe, trainer: Trainer, splits: Splits, run_dir: Path) -> Optional[dict]:
    """Evaluate the best-on-validation model (the last one without validation) and write report.md."""
    model = trainer.model
    best = run_dir / "best.pt"
    if best.is_file():
        ckpt_io.load_model_state(model, ckpt_io.load_checkpoint(best)["model"], str(best))
    kw = dict(mean=splits.mean, std=splits.std, tta=recipe.eval.tta, batch_size=recipe.eval.batch_size,
              channels_last=recipe.train.channels_last, **eval_geometry(recipe))
    if recipe.train.precision == "bf16":
        kw["autocast_dtype"] = torch.bfloat16
    test = None
    if len(splits.val_images):
        evaluate_split(model, splits.val_images, splits.val_labels, splits.classes, run_dir, split_name="val", **kw)
    if recipe.eval.test:
        test = evaluate_split(model, splits.test_images, splits.test_labels, splits.classes, run_dir, split_name="test", **kw)
        if trainer.ema is not None:
            evaluate_split(trainer.ema.module, splits.test_images, splits.test_labels, splits.classes, run_dir,
                           split_name="test_ema", **kw)
    if recipe.train.export_npz:
        from cifarlab.models.bit_weights import save_npz

        save_npz(model, run_dir / "weights.npz")
    write_report(run_dir)
    return test


def load_run_recipe(run_dir: Path) -> Recipe:
    path = Path(run_dir) / "recipe.yaml"
    if not path.is_file():
        raise CifarlabError(f"{run_dir} is not a cifarlab run folder (no recipe.yaml); give the folder a run wrote")
    return load_recipe(path)


def evaluate_saved(run_or_checkpoint: str | Path, split: str = "test", tta: Optional[str] = None) -> dict:
    """Evaluate a finished run's best checkpoint (or a given .pt) on `split`; refresh its report.md."""
    path = ckpt_io.resolve_checkpoint(run_or_checkpoint)
    run_dir = path.parent
    recipe = load_run_recipe(run_dir)
    state = ckpt_io.load_checkpoint(path)
    splits = prepare_splits(recipe.data, recipe.seed)
    if split == "val" and not len(splits.val_images):
        raise CifarlabError(f"run {run_dir} has no validation split (data.val_size=0); use --split test")
    model = build_model(replace(recipe, model=replace(recipe.model, weights=None)), state["num_classes"])
    ckpt_io.load_model_state(model, state["model"], str(path))
    images, labels = (splits.val_images, splits.val_labels) if split == "val" else (splits.test_images, splits.test_labels)
    result = evaluate_split(model, images, labels, state["classes"], run_dir, mean=state["mean"], std=state["std"],
                            split_name=split, tta=tta or recipe.eval.tta, batch_size=recipe.eval.batch_size,
                            **eval_geometry(recipe))
    write_report(run_dir)
    return result
