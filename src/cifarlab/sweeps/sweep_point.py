"""One sweep point's run folder brought to its end: skipped when finished, resumed from last.pt, else
(re)started; its wall time kept over all its parts. Worker processes and cluster jobs call `run_point`
too, so this module is what the launchers import (and it imports no launcher)."""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional

from cifarlab.atomic import write_text
from cifarlab.config import load_recipe
from cifarlab.config.flatten import differing_keys, recipe_values
from cifarlab.config.recipe import Recipe
from cifarlab.errors import CifarlabError
from cifarlab.runs import LAST, RECIPE, WALL_FILE, eval_file
from cifarlab.runs.lock import LOCK_FILE, hold_run_folder
from cifarlab.sweeps.grid import Point

Runner = Callable[..., object]  # run_recipe(recipe, resume=None) -> RunResult, or a stand-in with its signature


@dataclass
class Outcome:
    """What became of one point: its folder, `finished`, `stopped` or `failed` (with the message), and its wall time."""

    point: Point
    run_dir: Path
    status: str
    wall_s: Optional[float] = None
    error: Optional[str] = None


def wall_time(run_dir: Path) -> Optional[float]:
    """Seconds the run has taken so far over all its parts; None when its folder does not say."""
    try:
        return float(json.loads((Path(run_dir) / WALL_FILE).read_text())["wall_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def is_finished(run_dir: Path) -> bool:
    """Whether the run ended: its done-marker says so, or (runs from before the marker) it has test scores."""
    try:
        if json.loads((Path(run_dir) / WALL_FILE).read_text()).get("finished"):
            return True
    except (OSError, ValueError, AttributeError):
        pass
    return (Path(run_dir) / eval_file("test")).is_file()


def run_point(recipe: Recipe, run_dir: Path, runner: Optional[Runner] = None, **run_options) -> tuple[str, Optional[float]]:
    """Bring one run folder to the end: skip it if finished, resume it from last.pt, else (re)start it.

    Returns (status, wall seconds so far). `runner` defaults to run_recipe; `run_options` go to it
    (progress_stream). Worker processes and cluster jobs call this too, so it must stay importable.
    """
    run_dir = Path(run_dir)
    recipe = replace(recipe, name=run_dir.name, out_dir=str(run_dir.parent))
    if (run_dir / RECIPE).is_file() and ((run_dir / LAST).is_file() or is_finished(run_dir)):
        check_same_recipe(recipe, run_dir)
    if is_finished(run_dir):
        return "finished", wall_time(run_dir)
    if runner is None:
        from cifarlab.runner.run import run_recipe as runner  # the training stack, only when a point trains
    with contextlib.ExitStack() as held:
        if run_dir.is_dir():
            # The same sweep started again while this one trains the point must neither resume it nor
            # clear it: the folder is held from here (RunFolderBusy names the other process).
            held.enter_context(hold_run_folder(run_dir))
            if is_finished(run_dir):  # finished by the process that held it a moment ago
                return "finished", wall_time(run_dir)
        resume = run_dir if (run_dir / LAST).is_file() else None
        if resume is None and run_dir.exists():
            _clear(run_dir)  # a run that died before its first checkpoint: start it again
        before = (wall_time(run_dir) or 0.0) if resume else 0.0
        started = time.perf_counter()
        result = runner(recipe, resume=resume, **run_options)
        wall = before + time.perf_counter() - started
        write_text(run_dir / WALL_FILE, json.dumps({"wall_s": wall, "finished": result.status == "finished"}))
    return result.status, wall


def _clear(run_dir: Path) -> None:
    """Remove everything in `run_dir` but the lock this process holds on it."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def check_same_recipe(recipe: Recipe, run_dir: Path) -> None:
    """Refuse to skip or resume a run folder that was trained with another recipe (the sweep was edited since)."""
    wanted, saved = recipe_values(recipe), recipe_values(load_recipe(run_dir / RECIPE))
    # Where the folder lives is no difference (a sweep folder may be moved), nor is a value the run
    # settles itself (optim.lr=find becomes the found rate, and a One-Cycle's div_factor the found lr_min).
    settled = {"optim.lr", "schedule.div_factor"} if wanted.get("optim.lr") == "find" else set()
    differ = differing_keys(wanted, saved, ignore=("name", "out_dir", *settled))
    if differ:
        raise CifarlabError(f"{run_dir} was trained with another recipe (it differs in {', '.join(differ[:5])}); "
                            "give the sweep another --out, or delete that run folder to train it again")
