"""A run's folder while it trains: chosen, claimed (created and locked) once, checked on resume, and
removed again when the run fails before its first checkpoint, so a failed start leaves nothing behind."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Optional

from cifarlab import runs
from cifarlab.atomic import make_dirs
from cifarlab.config.recipe import Recipe
from cifarlab.data.prepare import Splits
from cifarlab.errors import CifarlabError
from cifarlab.runs.folder import new_run_dir
from cifarlab.runs.lock import RunFolderBusy, hold_run_folder, holds_files
from cifarlab.training.distributed import Placement
from cifarlab.training.loop import changed_keys


class RunFolder:
    """The folder one run trains in; `held` keeps its lock (cifarlab.runs.lock) until the run returns."""

    def __init__(self, recipe: Recipe, resume: Optional[Path], place: Placement, held: contextlib.ExitStack):
        self.path = Path(resume) if resume else new_run_dir(recipe)
        if place.world_size > 1 and not resume:
            self.path = Path(recipe.out_dir) / recipe.name  # every rank must agree without looking at the disk
        if resume and place.is_main and self.path.is_dir():
            held.enter_context(hold_run_folder(self.path))  # before anything is read: another process may be writing it
        self.resume = resume
        self.place = place
        self.held = held
        self.created = not holds_files(self.path)  # before this run writes anything into it
        self.claimed = bool(resume) or not place.is_main

    def claim(self, recipe: Recipe) -> None:
        """Create the new run's folder and hold it, once (the LR range test may claim it early)."""
        if not self.claimed:
            _claim_new_run_dir(self.path, recipe, self.place, self.held)
            self.claimed = True

    def remove_if_unresumable(self) -> None:
        """A new run that failed before its first checkpoint cannot be resumed: leave nothing behind."""
        if self.place.is_main and self.created and not self.resume and not (self.path / runs.LAST).exists():
            shutil.rmtree(self.path, ignore_errors=True)


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


def check_resumable(run_dir: Path, recipe: Recipe, splits: Splits, allow_changed: Iterable[str],
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
