"""Run a sweep: one run folder per grid point under <sweep>/runs, safe to stop and run again.

On every (re-)run a point's folder says what is left to do: a finished run (its done-marker or
eval_test.json) is skipped, a stopped one (last.pt) resumes, and a folder that died before its first
checkpoint starts again. Each run's wall time is kept in its WALL_FILE and adds up over the parts of
an interrupted run. Runs go one after another in this process, in N local worker processes, or to a
SLURM cluster through submitit (see sweeps.launchers).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Optional

from cifarlab.errors import CifarlabError
from cifarlab.sweeps import launchers
from cifarlab.sweeps.grid import Point
from cifarlab.sweeps.sweep_point import Outcome, Runner, run_point

RUNS = "runs"


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
    elif launcher == "local":
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
