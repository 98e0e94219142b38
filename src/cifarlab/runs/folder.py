"""Creating a run folder's path and reading back the recipe it holds."""

from __future__ import annotations

from pathlib import Path

from cifarlab.config import load_recipe
from cifarlab.config.recipe import Recipe
from cifarlab.errors import CifarlabError
from cifarlab.runs.files import RECIPE
from cifarlab.runs.lock import holder, holds_files


def new_run_dir(recipe: Recipe) -> Path:
    """runs/<name>, or runs/<name>-2, -3 ... when that folder already holds a run."""
    base = Path(recipe.out_dir) / recipe.name
    path, n = base, 1
    while holds_files(path) or holder(path):  # holder: just claimed by another process, nothing written yet
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def load_run_recipe(run_dir: Path, check_machine: bool = True) -> Recipe:
    """The recipe a run folder holds; `check_machine=False` to evaluate a run made on another machine."""
    path = Path(run_dir) / RECIPE
    if not path.is_file():
        raise CifarlabError(f"{run_dir} is not a cifarlab run folder (no {RECIPE}); give the folder a run wrote")
    return load_recipe(path, check_machine=check_machine)
