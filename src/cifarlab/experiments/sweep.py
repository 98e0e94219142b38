"""Run a sweep: one run folder per grid point under <sweep>/runs, safe to stop and run again.

On every (re-)run a point's folder says what is left to do: a finished run (its done-marker or
eval_test.json) is skipped, a stopped one (last.pt) resumes, and a folder that died before its first
checkpoint starts again. Each run's wall time is kept in its WALL_FILE and adds up over the parts of
an interrupted run. Runs go one after another in this process, in N local worker processes, or to a
SLURM cluster through submitit (see experiments.launchers).
"""

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
from cifarlab.config.recipe import Recipe
from cifarlab.errors import CifarlabError
from cifarlab.experiments.grid import Point
from cifarlab.run_lock import LOCK_FILE, hold_run_folder
from cifarlab.runs import LAST, RECIPE, eval_file

RUNS = "runs"
WALL_FILE = "sweep_wall.json"  # {"wall_s": training + evaluation time over all parts, "finished": bool}

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
        from cifarlab.experiments.run import run_recipe as runner
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


def _flat(mapping: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def check_same_recipe(recipe: Recipe, run_dir: Path) -> None:
    """Refuse to skip or resume a run folder that was trained with another recipe (the sweep was edited since)."""
    from cifarlab.config import load_recipe, recipe_to_dict

    wanted, saved = _flat(recipe_to_dict(recipe)), _flat(recipe_to_dict(load_recipe(run_dir / RECIPE)))
    # Where the folder lives is no difference (a sweep folder may be moved), nor is a value the run
    # settles itself (optim.lr=find becomes the found rate).
    differ = sorted(k for k in wanted.keys() | saved.keys()
                    if k not in ("name", "out_dir") and wanted.get(k) != saved.get(k) and wanted.get(k) != "find")
    if differ:
        raise CifarlabError(f"{run_dir} was trained with another recipe (it differs in {', '.join(differ[:5])}); "
                            "give the sweep another --out, or delete that run folder to train it again")


def run_points(points: list[Point], runs_dir: Path, jobs: int = 1, launcher: str = "local",
               runner: Optional[Runner] = None, on_done: Optional[Callable[[Outcome], None]] = None,
               slurm: Optional[dict] = None) -> list[Outcome]:
    """Run every point (finished ones are only read back) and return their outcomes in grid order.

    A run that stops (Ctrl-C, a cluster's time limit) stops the sweep with an error saying to run the
    same command again; a run that fails with a CifarlabError is reported after the others ran.
    """
    runs_dir = Path(runs_dir)
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise CifarlabError("two sweep points share a run folder name; give the grid distinct values")
    if launcher == "local" and jobs == 1:
        outcomes = _run_here(points, runs_dir, runner, on_done)
    else:
        from cifarlab.experiments import launchers

        if launcher == "local":
            outcomes = launchers.run_in_processes(points, runs_dir, jobs, on_done)
        elif launcher == "slurm":
            outcomes = launchers.run_on_slurm(points, runs_dir, slurm or {}, on_done)
        else:
            raise CifarlabError(f"unknown launcher {launcher!r}; use --launcher local or --launcher slurm")
    check_outcomes(outcomes)
    return outcomes


def _run_here(points, runs_dir, runner, on_done) -> list[Outcome]:
    outcomes = []
    for point in points:
        run_dir = runs_dir / point.name
        try:
            status, wall = run_point(point.recipe, run_dir, runner)
            outcome = Outcome(point, run_dir, status, wall)
        except CifarlabError as exc:
            outcome = Outcome(point, run_dir, "failed", error=str(exc))
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)
        if outcome.status == "stopped":
            break
    return outcomes


def check_outcomes(outcomes: list[Outcome]) -> None:
    """Raise the error a sweep ends with when a run stopped or failed."""
    stopped = [o.run_dir.name for o in outcomes if o.status == "stopped"]
    if stopped:
        raise CifarlabError(f"sweep stopped during {', '.join(stopped)}; run the same command again to continue")
    failed = [o for o in outcomes if o.status == "failed"]
    if failed:
        lines = "; ".join(f"{o.run_dir.name}: {o.error}" for o in failed)
        raise CifarlabError(f"{len(failed)} of {len(outcomes)} sweep runs failed ({lines}); "
                            "fix the cause and run the same command again (finished runs are kept)")
