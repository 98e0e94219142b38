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
from cifarlab.config import load_recipe, recipe_to_yaml
from cifarlab.config.recipe import AugmentConfig, Recipe
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.data.prepare import Splits, prepare_splits
from cifarlab.data.sources import Dataset
from cifarlab.errors import CifarlabError
from cifarlab.evaluation import evaluate_split, write_report
from cifarlab.evaluation.run_options import (
    evaluation_geometry,
    evaluation_options,
    model_normalisation,
)
from cifarlab.models import create
from cifarlab.models.whitening import airbench_init_from_data
from cifarlab.resources import (
    check_fits,
    free_cores,
    training_slot,
    warn_if_oversubscribed,
)
from cifarlab.run_lock import RunFolderBusy, hold_run_folder, holder, holds_files
from cifarlab.training import checkpoint as ckpt_io
from cifarlab.training.allocator import allocator_setting
from cifarlab.training.callbacks import Callback
from cifarlab.training.distributed import Placement, barrier, setup, teardown
from cifarlab.training.freezing import freezing_callbacks
from cifarlab.training.loop import Trainer, changed_keys
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


def new_run_dir(recipe: Recipe) -> Path:
    """runs/<name>, or runs/<name>-2, -3 ... when that folder already holds a run."""
    base = Path(recipe.out_dir) / recipe.name
    path, n = base, 1
    while holds_files(path) or holder(path):  # holder: just claimed by another process, nothing written yet
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def build_model(recipe: Recipe, num_classes: int) -> nn.Module:
    options = dict(recipe.model.options)
    if recipe.model.weights:
        options["weights"] = recipe.model.weights
    return create(recipe.model.name, num_classes=num_classes, **options)


def build_batches(recipe: Recipe, splits: Splits, place: Placement,
                  geometry: dict) -> tuple[BatchPipeline, Optional[BatchPipeline]]:
    """The training batches and, when there is a validation split, the validation batches, on the device."""
    t, device = recipe.train, place.device
    common = dict(num_classes=splits.num_classes, mean=splits.mean, std=splits.std, channels_last=t.channels_last)
    train = BatchPipeline(
        splits.train_images.to(device), splits.train_labels, batch_size=t.batch_size,
        augment=recipe.augment, label_smoothing=t.label_smoothing, seed=recipe.seed,
        rank=place.rank, world_size=place.world_size, **common,
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
    """The run itself; `held` keeps the run folder's lock (cifarlab.run_lock) until run_recipe returns."""
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
        airbench_init_from_data(model, splits.train_images, splits.mean, splits.std, recipe.seed)
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
    """Create the new run's folder and hold it until the run ends (see cifarlab.run_lock).

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
    return replace(recipe, optim=replace(recipe.optim, lr=float(f"{found:.3g}")))


def final_evaluation(recipe: Recipe, trainer: Trainer, splits: Splits, run_dir: Path) -> Optional[dict]:
    """Evaluate the best-on-validation model (the last one without validation) and write report.md."""
    model = trainer.model
    best = run_dir / runs.BEST
    weights_label = "last weights"
    if best.is_file():
        ckpt_io.load_model_state(model, ckpt_io.load_checkpoint(best)["model"], str(best))
        weights_label = "best checkpoint"
    kw = dict(mean=splits.mean, std=splits.std, **evaluation_options(model, recipe))
    test = None
    evaluations = []
    if len(splits.val_images):
        evaluations.append(("val", model, weights_label, splits.val_images, splits.val_labels))
    if recipe.eval.test:
        evaluations.append(("test", model, weights_label, splits.test_images, splits.test_labels))
        if trainer.ema is not None:
            evaluations.append(("test_ema", trainer.ema.module, "EMA weights", splits.test_images, splits.test_labels))
    for split, evaluated, label, images, labels in evaluations:
        result = evaluate_split(evaluated, images, labels, splits.classes, run_dir, split_name=split,
                                model_label=label, **kw)
        trainer.callbacks.call("on_eval", trainer, split, result)
        if split == "test":
            test = result
    if recipe.train.export_npz:
        from cifarlab.models.bit_weights import save_npz

        save_npz(model, run_dir / runs.WEIGHTS_NPZ)
    write_report(run_dir)
    return test


def load_run_recipe(run_dir: Path, check_machine: bool = True) -> Recipe:
    """The recipe a run folder holds; `check_machine=False` to evaluate a run made on another machine."""
    path = Path(run_dir) / runs.RECIPE
    if not path.is_file():
        raise CifarlabError(f"{run_dir} is not a cifarlab run folder (no {runs.RECIPE}); give the folder a run wrote")
    return load_recipe(path, check_machine=check_machine)


def evaluate_saved(run_or_checkpoint: str | Path, split: str = "test", tta: Optional[str] = None) -> dict:
    """Evaluate a finished run's best checkpoint (or a given .pt) on `split`; refresh its report.md."""
    path = ckpt_io.resolve_checkpoint(run_or_checkpoint)
    run_dir = path.parent
    run = runs.load_run(path)  # refuses a folder that is not a run, naming the missing recipe.yaml
    recipe = run.recipe
    splits = prepare_splits(recipe.data, recipe.seed)
    if split == "val" and not len(splits.val_images):
        raise CifarlabError(f"run {run_dir} has no validation split (data.val_size=0); use --split test")
    model = run.model
    images, labels = (splits.val_images, splits.val_labels) if split == "val" else (splits.test_images, splits.test_labels)
    with allocator_setting(recipe.train.allocator):
        result = evaluate_split(model, images, labels, run.classes, run_dir, mean=run.mean, std=run.std,
                                split_name=split, model_label=path.name, **evaluation_options(model, recipe, tta))
    write_report(run_dir)
    return result
