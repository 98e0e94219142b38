"""The LR range test of a recipe on its own (`cifarlab lr-find`), prepared exactly as a run prepares it.

Data split, model (with its weights and normalisation), airbench whitening and the training batches
come from the same functions `run_recipe` uses, and the test itself is `lr_range_test`, the code behind
`optim.lr: find`; only the range and the output folder are the caller's. Nothing is trained and no run
folder is made: the folder gets lr_find.json and lr_find.png.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import torch

from cifarlab.config.recipe import Recipe
from cifarlab.data.equalise import clahe_of
from cifarlab.data.prepare import prepare_splits
from cifarlab.errors import CifarlabError
from cifarlab.evaluation.settings import evaluation_geometry, model_normalisation
from cifarlab.models.whitening import airbench_init_from_data
from cifarlab.runner.run import build_batches, build_model, seed_everything
from cifarlab.system.cores import free_cores
from cifarlab.training.allocator import allocator_setting
from cifarlab.training.distributed import Placement, pick_device
from cifarlab.training.lr_finder import LrFinding, lr_range_test

MIN_STEPS = 5  # fewer points than this cannot show a fall, let alone its steepest part


def check_range(start_lr: float, end_lr: float, num_steps: int, out_dir: Path) -> None:
    """Refuse a range or output folder the test cannot use, before any data or model is loaded."""
    if not 0 < start_lr < end_lr:
        raise CifarlabError(f"the LR range must rise from a positive start: got --start {start_lr:g} --end {end_lr:g}; "
                            "give e.g. --start 1e-7 --end 10")
    if num_steps < MIN_STEPS:
        raise CifarlabError(f"--steps {num_steps} is too few to see the loss fall; give at least {MIN_STEPS} (e.g. 100)")
    if out_dir.exists() and not out_dir.is_dir():
        raise CifarlabError(f"--out {out_dir} is a file, not a folder; give a folder for lr_find.json and lr_find.png")


def find_lr(recipe: Recipe, out_dir: Path, start_lr: float = 1e-7, end_lr: float = 10.0,
            num_steps: int = 100) -> LrFinding:
    """Run the LR range test of `recipe` from `start_lr` to `end_lr` over `num_steps`; write `out_dir`."""
    out_dir = Path(out_dir)
    check_range(start_lr, end_lr, num_steps, out_dir)
    threads = recipe.train.threads or (None if "OMP_NUM_THREADS" in os.environ else free_cores())
    if threads:  # as run_recipe: an explicit OMP_NUM_THREADS is the user's choice
        torch.set_num_threads(threads)
    place = Placement(pick_device(recipe.train.device))
    with allocator_setting(recipe.train.allocator):
        seed_everything(recipe.seed)
        splits = prepare_splits(recipe.data, recipe.seed)
        model = build_model(recipe, splits.num_classes)
        normalisation = model_normalisation(model)
        if normalisation:
            splits = replace(splits, mean=tuple(normalisation[0]), std=tuple(normalisation[1]))
        if recipe.model.init == "airbench":
            airbench_init_from_data(model, splits.train_images, splits.mean, splits.std, recipe.seed, clahe_of(recipe.data))
        train_batches, _ = build_batches(recipe, splits, place, evaluation_geometry(model, recipe))
        return lr_range_test(recipe, model, train_batches, place.device, out_dir, start_lr, end_lr, num_steps)
