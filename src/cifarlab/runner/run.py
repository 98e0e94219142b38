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
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, TextIO

import numpy as np
import torch
from torch import nn

from cifarlab import runs
from cifarlab.atomic import write_text
from cifarlab.config import recipe_to_yaml
from cifarlab.config.recipe import AugmentConfig, Recipe
from cifarlab.data.equalise import clahe_of
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.data.prepare import Splits, prepare_splits
from cifarlab.data.sources import Dataset
from cifarlab.evaluation.settings import (
    evaluation_geometry,
    model_normalisation,
)
from cifarlab.models import create
from cifarlab.models.whitening import airbench_init_from_data
from cifarlab.runner.evaluate import final_evaluation
from cifarlab.runner.run_folder import RunFolder, check_resumable
from cifarlab.runs import checkpoint as ckpt_io
from cifarlab.system.cores import free_cores, warn_if_oversubscribed
from cifarlab.system.trainings import training_slot
from cifarlab.training.allocator import allocator_setting
from cifarlab.training.callbacks import Callback
from cifarlab.training.distributed import Placement, barrier, setup, teardown
from cifarlab.training.freezing import freezing_callbacks
from cifarlab.training.loop import Trainer
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
    t = recipe.train
    train = BatchPipeline(
        splits.train_images.to(place.device), splits.train_labels, batch_size=t.batch_size,
        augment=recipe.augment, label_smoothing=t.label_smoothing, seed=recipe.seed,
        rank=place.rank, world_size=place.world_size, with_replacement=recipe.fewshot.with_replacement,
        **_pipeline_options(recipe, splits),
    )
    val = None
    if len(splits.val_images):
        val = evaluation_batches(recipe, splits, place, geometry, splits.val_images, splits.val_labels)
    return train, val


def evaluation_batches(recipe: Recipe, splits: Splits, place: Placement, geometry: dict,
                       images: torch.Tensor, labels: torch.Tensor) -> BatchPipeline:
    """Images scored during training (validation, or the display-only test curve): in order, unaugmented,
    at the model's evaluation size, normalised (and equalised) as the training images."""
    augment = AugmentConfig(crop_padding=0, flip="none", resize=geometry["resize"]) if geometry else None
    return BatchPipeline(images.to(place.device), labels, batch_size=recipe.eval.batch_size, augment=augment,
                         shuffle=False, drop_last=False, **_pipeline_options(recipe, splits))


def _pipeline_options(recipe: Recipe, splits: Splits) -> dict:
    return dict(num_classes=splits.num_classes, mean=splits.mean, std=splits.std,
                channels_last=recipe.train.channels_last, clahe=clahe_of(recipe.data))


@dataclass
class RunRequest:
    """What `run_recipe` was asked to do, handed on whole to its stages."""

    recipe: Recipe
    resume: Optional[Path] = None
    stop_after: Optional[int] = None
    progress_stream: Optional[TextIO] = None
    model: Optional[nn.Module] = None
    dataset: Optional[Dataset] = None
    callbacks: list[Callback] = field(default_factory=list)
    allow_changed: list[str] = field(default_factory=list)


@dataclass
class Prepared:
    """Everything a run trains with, built before its folder is touched (any of it may refuse the recipe)."""

    recipe: Recipe  # with the found learning rate when optim.lr was `find`
    model: nn.Module
    splits: Splits
    train_batches: BatchPipeline
    val_batches: Optional[BatchPipeline]
    test_curve_batches: Optional[BatchPipeline]  # eval.test_curve: scored every epoch, for display only


def run_recipe(recipe: Recipe, resume: Optional[Path] = None, stop_after: Optional[int] = None,
               progress_stream=None, *, model: Optional[nn.Module] = None, dataset: Optional[Dataset] = None,
               callbacks: Iterable[Callback] = (), allow_changed: Iterable[str] = ()) -> RunResult:
    """Train `recipe` (or continue the run in `resume`), then evaluate and write the report.

    `model` trains that module instead of building `recipe.model.name`; `dataset` trains on those
    images instead of loading `recipe.data.dataset`; `callbacks` watch (or stop) the run;
    `allow_changed` lists recipe keys a resumed run may have changed (train.epochs to extend it).
    """
    request = RunRequest(recipe, resume, stop_after, progress_stream, model, dataset, list(callbacks),
                         list(allow_changed))
    threads = recipe.train.threads or (None if "OMP_NUM_THREADS" in os.environ else free_cores())
    if threads:  # an explicit OMP_NUM_THREADS is the user's choice: keep it unless the recipe names one
        torch.set_num_threads(threads)
    with allocator_setting(recipe.train.allocator), contextlib.ExitStack() as held:
        place = setup(recipe.train.device)
        try:
            return _run(request, place, held)
        finally:
            teardown(place)


def _run(request: RunRequest, place: Placement, held: contextlib.ExitStack) -> RunResult:
    """Prepare, claim the folder, fit, finish; the folder's lock is held until run_recipe returns."""
    folder = RunFolder(request.recipe, request.resume, place, held)
    prepared = _prepare(request, place, folder)
    # The Trainer (optimiser, loss, schedule) and the sinks can still refuse the recipe: build them
    # before anything is written.
    trainer = _build_trainer(prepared, request, place, folder.path)
    _start_in_folder(trainer, prepared, request, folder)
    return _fit_and_finish(trainer, prepared, request, folder)


def _prepare(request: RunRequest, place: Placement, folder: RunFolder) -> Prepared:
    """Data, model and batches on the device, checked to fit; the LR range test when the recipe asks for it."""
    recipe = request.recipe
    seed_everything(recipe.seed)
    splits = prepare_splits(recipe.data, recipe.seed, dataset=request.dataset)
    model = request.model if request.model is not None else build_model(recipe, splits.num_classes)
    normalisation = model_normalisation(model)
    if normalisation:
        splits = replace(splits, mean=tuple(normalisation[0]), std=tuple(normalisation[1]))
    side = recipe.augment.crop or recipe.augment.resize or splits.train_images.shape[-1]
    check_fits(recipe, len(splits.train_images), model, (splits.train_images.shape[1], side, side),
               extra_bytes=splits.train_images.numel() + splits.val_images.numel()
               + (splits.test_images.numel() if recipe.eval.test_curve else 0))
    if recipe.model.init == "airbench":
        airbench_init_from_data(model, splits.train_images, splits.mean, splits.std, recipe.seed, clahe_of(recipe.data))
    geometry = evaluation_geometry(model, recipe)
    train_batches, val_batches = build_batches(recipe, splits, place, geometry)
    test_curve_batches = None
    if recipe.eval.test_curve:
        test_curve_batches = evaluation_batches(recipe, splits, place, geometry, splits.test_images, splits.test_labels)
    if recipe.optim.lr == "find":
        folder.claim(recipe)  # the range test writes its plot into the run folder
        recipe = _find_lr(recipe, model, train_batches, place, folder.path)
    return Prepared(recipe, model, splits, train_batches, val_batches, test_curve_batches)


def _build_trainer(prepared: Prepared, request: RunRequest, place: Placement, run_dir: Path) -> Trainer:
    recipe = prepared.recipe
    sinks = build_sinks(recipe.log.sinks, run_dir, f"{recipe.name} {recipe.model.name}", stream=request.progress_stream,
                        tracking_uri=recipe.log.tracking_uri, project=recipe.log.project) if place.is_main else []
    return Trainer(recipe, prepared.model, prepared.train_batches, prepared.val_batches, place, run_dir,
                   [*sinks, *freezing_callbacks(recipe.model), *request.callbacks], classes=prepared.splits.classes,
                   test_curve_batches=prepared.test_curve_batches)


def _start_in_folder(trainer: Trainer, prepared: Prepared, request: RunRequest, folder: RunFolder) -> None:
    """Check a resumed folder (or claim a new one), write the recipe and split, and load the last checkpoint."""
    recipe, place, run_dir = prepared.recipe, trainer.place, folder.path
    # Read once: the recipe check and the trainer both need it (a BiT checkpoint is hundreds of MB).
    last = run_dir / runs.LAST
    saved = ckpt_io.load_checkpoint(last) if request.resume and last.is_file() else None
    if request.resume:
        check_resumable(run_dir, recipe, prepared.splits, request.allow_changed, saved)
    elif place.is_main:
        folder.claim(recipe)
    if place.is_main:
        write_text(run_dir / runs.RECIPE, recipe_to_yaml(recipe))  # a resumed run's: the same, or with allowed edits
        if not request.resume:
            write_text(run_dir / runs.INDICES, json.dumps(prepared.splits.indices_record()))
    barrier(place)
    if saved is not None:
        trainer.load_state(saved, str(last))
    elif request.resume and place.is_main:
        # Killed before its first checkpoint: the run starts again from step 0 in its own folder. Said
        # aloud, since "training N steps" after --resume would otherwise look like lost progress.
        print(f"{run_dir} has no {runs.LAST} yet (stopped before its first checkpoint): training it from step 0",
              file=sys.stderr, flush=True)
    if place.is_main:
        warn_if_oversubscribed()


def _fit_and_finish(trainer: Trainer, prepared: Prepared, request: RunRequest, folder: RunFolder) -> RunResult:
    """Train, then score and report a finished run; a run stopped or failed on the way is said so to the callbacks."""
    place, run_dir = trainer.place, folder.path
    status = None
    try:
        with training_slot():
            status = trainer.fit(stop_after=request.stop_after)
        result = RunResult(run_dir, status, model=trainer.model, classes=list(prepared.splits.classes),
                           exit_code=trainer.stop_exit_code)
        if status == "finished" and place.is_main:
            result.test = final_evaluation(prepared.recipe, trainer, prepared.splits, run_dir)
    except BaseException as exc:
        # Ctrl-C during the final evaluation (minutes for a large model with TTA) stops a run whose training
        # is complete and saved: not a failure, and --resume only evaluates and reports.
        evaluation_stopped = status == "finished" and isinstance(exc, KeyboardInterrupt)
        trainer.callbacks.call("on_end", trainer, "stopped" if evaluation_stopped else "failed")
        if evaluation_stopped and place.is_main:
            print(f"{run_dir}: training is complete and saved (last.pt); the final evaluation was interrupted. "
                  f"Evaluate and report it with: cifarlab train --resume {run_dir} (in a sweep, run the sweep "
                  "command again)", file=sys.stderr, flush=True)
        folder.remove_if_unresumable()
        raise
    trainer.callbacks.call("on_end", trainer, status)
    barrier(place)
    return result


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
