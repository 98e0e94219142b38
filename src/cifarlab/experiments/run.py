"""One run from a recipe: data, model, batches, run folder, training, final evaluation and report.

The order matters: everything that can refuse the recipe (data, model, batch size) runs before
the run folder is created, and a run that fails before its first checkpoint removes its folder,
so a failed start leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import sys
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from torch import nn

from cifarlab import runs
from cifarlab.atomic import make_dirs, write_text
from cifarlab.config import recipe_to_yaml
from cifarlab.config.recipe import AugmentConfig, Recipe
from cifarlab.data.equalise import clahe_of
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.data.prepare import Splits, prepare_splits, split_images
from cifarlab.data.sources import Dataset
from cifarlab.errors import CifarlabError
from cifarlab.evaluation import evaluate_split, write_report
from cifarlab.evaluation.settings import (
    evaluation_geometry,
    model_normalisation,
    run_settings,
)
from cifarlab.models import create
from cifarlab.models.whitening import airbench_init_from_data
from cifarlab.runs import checkpoint as ckpt_io
from cifarlab.runs.folder import new_run_dir
from cifarlab.runs.lock import RunFolderBusy, hold_run_folder, holds_files
from cifarlab.system.cores import free_cores, warn_if_oversubscribed
from cifarlab.system.trainings import training_slot
from cifarlab.training.allocator import allocator_setting
from cifarlab.training.callbacks import Callback
from cifarlab.training.distributed import Placement, barrier, setup, teardown
from cifarlab.training.freezing import freezing_callbacks
from cifarlab.training.loop import Trainer, changed_keys
from cifarlab.training.memory_fit import check_fits
from cifarlab.training.sinks import build_sinks


@dataclass
class RunResult:
    run_dir: Path
    status: str  # finished or stopped
    test: Optional[dict] = None
    model: Optional[nn.Module] = None  # the trained model, with the best-on-validation weights when finished
    classes: Optional[list[str]] = None
    exit_code: Optional[int] = None  # of the signal that stopped the run (130 Ctrl-C, 143 SIGTERM)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(recipe: Recipe, num_classes: int) -> nn.Module:
    options = dict(recipe.model.options)
    if recipe.model.weights:
        options["weights"] = recipe.model.weights
    return create(recipe.model.name, num_classes=num_classes, **options)


def build_batches(recipe: Recipe, splits: Splits, place: Placement,
                  geometry: dict) -> tuple[BatchPipeline, Optional[BatchPipeline]]:
    """The training batches and, when there is a validation split, the validation batches, on the device."""
    t, device = recipe.train, place.device
    common = dict(num_classes=splits.num_classes, mean=splits.mean, std=splits.std, channels_last=t.channels_last,
                  clahe=clahe_of(recipe.data))
    train = BatchPipeline(
        splits.train_images.to(device), splits.train_labels, batch_size=t.batch_size,
        augment=recipe.augment, label_smoothing=t.label_smoothing, seed=recipe.seed,
        rank=place.rank, world_size=place.world_size, with_replacement=recipe.fewshot.with_replacement, **common,
    )
    val = None
    if len(splits.val_images):
        augment = AugmentConfig(crop_padding=0, flip="none", resize=geometry["resize"]) if geometry else None
        val = BatchPipeline(splits.val_images.to(device), splits.val_labels, batch_size=recipe.eval.batch_size,
                            augment=augment, shuffle=False, drop_last=False, **common)
    return train, val


def run_recipe(recipe: Recipe, resume: Optional[Path] = None, stop_after: Optional[int] = None,
               progress_stream=None, *, model: Optional[nn.Module] = None, dataset: Optional[Dataset] = None,
               callbacks: Iterable[Callback] = (), allow_changed: Iterable[str] = ()) -> RunResult:
    """Train `recipe` (or continue the run in `resume`), then evaluate and write the report.

    `model` trains that module instead of building `recipe.model.name`; `dataset` trains on those
    images instead of loading `recipe.data.dataset`; `callbacks` watch (or stop) the run;
    `allow_changed` lists recipe keys a resumed run may have changed (train.epochs to extend it).
    """
    threads = recipe.train.threads or (None if "OMP_NUM_THREADS" in os.environ else free_cores())
    if threads:  # an explicit OMP_NUM_THREADS is the user's choice: keep it unless the recipe names one
        torch.set_num_threads(threads)
    with allocator_setting(recipe.train.allocator), contextlib.ExitStack() as held:
        place = setup(recipe.train.device)
        try:
            return _run(recipe, place, resume, stop_after, progress_stream, model, dataset, list(callbacks),
                        list(allow_changed), held)
        finally:
            teardown(place)


def _run(recipe: Recipe, place: Placement, resume, stop_after, progress_stream, model, dataset, callbacks,
         allow_changed, held: contextlib.ExitStack) -> RunResult:
    """The run itself; `held` keeps the run folder's lock (cifarlab.runs.lock) until run_recipe returns."""
    run_dir = Path(resume) if resume else new_run_dir(recipe)
    if place.world_size > 1 and not resume:
        run_dir = Path(recipe.out_dir) / recipe.name  # every rank must agree without looking at the disk
    if resume and place.is_main and run_dir.is_dir():
        held.enter_context(hold_run_folder(run_dir))  # before anything is read: another process may be writing it
    created = not holds_files(run_dir)  # before this run writes anything into it
    claimed = bool(resume) or not place.is_main
    seed_everything(recipe.seed)
    splits = prepare_splits(recipe.data, recipe.seed, dataset=dataset)
    if model is None:
        model = build_model(recipe, splits.num_classes)
    normalisation = model_normalisation(model)
    if normalisation:
        splits = replace(splits, mean=tuple(normalisation[0]), std=tuple(normalisation[1]))
    side = recipe.augment.crop or recipe.augment.resize or splits.train_images.shape[-1]
    check_fits(recipe, len(splits.train_images), model, (splits.train_images.shape[1], side, side),
               extra_bytes=splits.train_images.numel() + splits.val_images.numel())
    if recipe.model.init == "airbench":
        airbench_init_from_data(model, splits.train_images, splits.mean, splits.std, recipe.seed, clahe_of(recipe.data))
    train_batches, val_batches = build_batches(recipe, splits, place, evaluation_geometry(model, recipe))
    if recipe.optim.lr == "find":
        if not claimed:  # the range test writes its plot into the run folder
            _claim_new_run_dir(run_dir, recipe, place, held)
            claimed = True
        recipe = _find_lr(recipe, model, train_batches, place, run_dir)
    # The Trainer (optimiser, loss, schedule) and the sinks can still refuse the recipe: build them
    # before anything is written.
    sinks = build_sinks(recipe.log.sinks, run_dir, f"{recipe.name} {recipe.model.name}", stream=progress_stream,
                        tracking_uri=recipe.log.tracking_uri, project=recipe.log.project) if place.is_main else []
    trainer = Trainer(recipe, model, train_batches, val_batches, place, run_dir,
                      [*sinks, *freezing_callbacks(recipe.model), *callbacks], classes=splits.classes)
    # Read once: the recipe check and the trainer both need it (a BiT checkpoint is hundreds of MB).
    last = run_dir / runs.LAST
    saved = ckpt_io.load_checkpoint(last) if resume and last.is_file() else None
    if resume:
        _check_resumable(run_dir, recipe, splits, allow_changed, saved)
        if place.is_main:
            write_text(run_dir / runs.RECIPE, recipe_to_yaml(recipe))  # the same, or with the allowed edits
    elif place.is_main:
        if not claimed:
            _claim_new_run_dir(run_dir, recipe, place, held)
        write_text(run_dir / runs.RECIPE, recipe_to_yaml(recipe))
        write_text(run_dir / runs.INDICES, json.dumps(splits.indices_record()))
    barrier(place)
    if saved is not None:
        trainer.load_state(saved, str(last))
    elif resume and place.is_main:
        # Killed before its first checkpoint: the run starts again from step 0 in its own folder. Said
        # aloud, since "training N steps" after --resume would otherwise look like lost progress.
        print(f"{run_dir} has no {runs.LAST} yet (stopped before its first checkpoint): training it from step 0",
              file=sys.stderr, flush=True)
    if place.is_main:
        warn_if_oversubscribed()
    status = None
    try:
        with training_slot():
            status = trainer.fit(stop_after=stop_after)
        result = RunResult(run_dir, status, model=trainer.model, classes=list(splits.classes),
                           exit_code=trainer.stop_exit_code)
        if status == "finished" and place.is_main:
            result.test = final_evaluation(recipe, trainer, splits, run_dir)
    except BaseException as exc:
        # Ctrl-C during the final evaluation (minutes for a large model with TTA) stops a run whose training
        # is complete and saved: not a failure, and --resume only evaluates and reports.
        evaluation_stopped = status == "finished" and isinstance(exc, KeyboardInterrupt)
        trainer.callbacks.call("on_end", trainer, "stopped" if evaluation_stopped else "failed")
        if evaluation_stopped and place.is_main:
            print(f"{run_dir}: training is complete and saved (last.pt); the final evaluation was interrupted. "
                  f"Evaluate and report it with: cifarlab train --resume {run_dir} (in a sweep, run the sweep "
                  "command again)", file=sys.stderr, flush=True)
        # A run that failed before its first checkpoint cannot be resumed: leave nothing behind.
        if place.is_main and created and not resume and not (run_dir / runs.LAST).exists():
            shutil.rmtree(run_dir, ignore_errors=True)
        raise
    trainer.callbacks.call("on_end", trainer, status)
    barrier(place)
    return result


def _claim_new_run_dir(run_dir: Path, recipe: Recipe, place: Placement, held: contextlib.ExitStack) -> None:
    """Create the new run's folder and hold it until the run ends (see cifarlab.runs.lock).

    Another run of the same recipe may have chosen the same folder at the same moment: then the one that
    holds it, or has written into it, keeps it, and this one stops before writing anything.
    """
    existed = run_dir.exists()
    make_dirs(run_dir)
    try:
        held.enter_context(hold_run_folder(run_dir))
        # Held, but the other run may have taken the folder, written and let go between our choice and now.
        taken = place.world_size == 1 and holds_files(run_dir)
    except RunFolderBusy:
        if place.world_size > 1:
            raise
        taken = True
    except CifarlabError:  # the folder cannot take even its lock file (a full disk): leave no empty folder
        if not existed:
            with contextlib.suppress(OSError):
                run_dir.rmdir()
        raise
    if taken:
        raise CifarlabError(f"{run_dir} was taken by another cifarlab run started at the same time; run this "
                            f"command again (it will train in {new_run_dir(recipe)})")


def _check_resumable(run_dir: Path, recipe: Recipe, splits: Splits, allow_changed: Iterable[str],
                     saved: Optional[dict]) -> None:
    """Refuse to continue a run whose recipe (beyond `allow_changed` keys) or data split changed;
    `saved` is its last.pt's content (None when it has none yet)."""
    values = saved.get("training_values") if saved else None
    if values:
        changed = [key for key in changed_keys(values, recipe) if key not in set(allow_changed)]
        if changed:
            raise CifarlabError(
                f"{run_dir / runs.RECIPE} changed since the run started ({', '.join(changed)}), so --resume cannot "
                f"continue it exactly; undo the edit, pass --allow-changed {' '.join(changed)} if the change is safe "
                f"(e.g. train.epochs to extend a run), or start a new run: cifarlab train {run_dir / runs.RECIPE}")
    indices = run_dir / runs.INDICES
    if indices.is_file() and json.loads(indices.read_text()) != splits.indices_record():
        raise CifarlabError(
            f"the training/validation split of {run_dir} no longer matches {indices} (the dataset or its data.* "
            "settings changed); resume with the data the run started with, or start a new run")


def _find_lr(recipe: Recipe, model: nn.Module, batches: BatchPipeline, place: Placement, run_dir: Path) -> Recipe:
    from cifarlab.training.lr_finder import lr_range_test

    found = lr_range_test(recipe, model, batches, place.device, run_dir if place.is_main else None)
    lr_max = float(f"{found.lr_max:.3g}")
    recipe = replace(recipe, optim=replace(recipe.optim, lr=lr_max))
    if recipe.schedule.name != "onecycle":
        return recipe
    # One-Cycle starts at the found lower bound too ("LRMIN = FIND" in ERA's seed): peak / div_factor = lr_min.
    div_factor = max(float(f"{lr_max / found.lr_min:.3g}"), 1.0)
    return replace(recipe, schedule=replace(recipe.schedule, div_factor=div_factor))


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
