"""Where a sweep's runs execute besides this process: N local worker processes, or SLURM jobs through submitit.

Both call `sweep_point.run_point` for each unfinished point, so skipping, resuming and wall-time
bookkeeping are the same everywhere. This module imports no torch at import time: a worker
process must limit its threads before torch starts.
"""

from __future__ import annotations

import concurrent.futures
import functools
import multiprocessing
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from cifarlab.errors import CifarlabError

if TYPE_CHECKING:
    from cifarlab.sweeps.grid import Point
    from cifarlab.sweeps.sweep_point import Outcome

LOGS = "logs"  # <sweep>/logs/<run>.log: a worker's progress lines, which would interleave on one terminal


def threads_per_job(jobs: int, cores: Optional[int] = None) -> int:
    """CPU threads each of `jobs` concurrent trainings may use: together they use the cores once.

    Two trainings that each take every core's threads slow down by an order of magnitude.
    """
    cores = cores or os.cpu_count() or 1
    return max(1, cores // max(1, jobs))


def _limit_threads(threads: int) -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    import torch

    torch.set_num_threads(threads)


def _run_logged(recipe_yaml: str, run_dir: str, log_path: str) -> tuple[str, Optional[float]]:
    """A worker's or job's run: the recipe travels as YAML, as it is saved, not as pickled dataclasses."""
    import yaml

    from cifarlab.config import recipe_from_dict
    from cifarlab.sweeps.sweep_point import run_point

    recipe = recipe_from_dict(yaml.safe_load(recipe_yaml), source=f"the sweep's recipe for {Path(run_dir).name}")
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as log:
        return run_point(recipe, Path(run_dir), progress_stream=log)


def _submission(point, runs_dir: Path) -> tuple[str, str, str]:
    from cifarlab.config import recipe_to_yaml

    return recipe_to_yaml(point.recipe), str(runs_dir / point.name), str(runs_dir.parent / LOGS / f"{point.name}.log")


def _skip_finished(points, runs_dir: Path) -> tuple[dict, list]:
    from cifarlab.sweeps.sweep_point import Outcome, is_finished, wall_time

    done = {}
    for point in points:
        run_dir = runs_dir / point.name
        if is_finished(run_dir):
            done[point.name] = Outcome(point, run_dir, "finished", wall_time(run_dir))
    return done, [p for p in points if p.name not in done]


def _collect(points, done: dict, completed: Iterable[tuple], on_done: Optional[Callable]) -> list[Outcome]:
    """Outcomes as runs end (`completed` yields (point, run folder, result getter) in the order runs end),
    each reported through on_done, returned in grid order."""
    from cifarlab.sweeps.sweep_point import Outcome

    for outcome in done.values():
        if on_done:
            on_done(outcome)
    for point, run_dir, result in completed:
        try:
            status, wall = result()
            outcome = Outcome(point, run_dir, status, wall)
        except CifarlabError as exc:
            outcome = Outcome(point, run_dir, "failed", error=str(exc))
        done[point.name] = outcome
        print(f"{point.name}: {outcome.status}", file=sys.stderr, flush=True)
        if on_done:
            on_done(outcome)
    return [done[p.name] for p in points if p.name in done]


def run_in_processes(points: list[Point], runs_dir: Path, jobs: int, on_done: Optional[Callable] = None) -> list[Outcome]:
    """Run the unfinished points in `jobs` spawned worker processes, each limited to its share of the cores."""
    if jobs < 1:
        raise CifarlabError(f"--jobs {jobs}: give the number of runs to train at once, 1 or more")
    done, todo = _skip_finished(points, runs_dir)
    threads = threads_per_job(min(jobs, max(1, len(todo))))
    context = multiprocessing.get_context("spawn")  # fork would copy torch's thread pools mid-use
    with concurrent.futures.ProcessPoolExecutor(max_workers=jobs, mp_context=context,
                                                initializer=_limit_threads, initargs=(threads,)) as pool:
        futures = {pool.submit(_run_logged, *_submission(p, runs_dir)): (p, runs_dir / p.name) for p in todo}
        try:
            completed = ((*futures[f], f.result) for f in concurrent.futures.as_completed(futures))
            return _collect(points, done, completed, on_done)
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)  # running ones finish their step and save last.pt
            raise


def _submitit():
    try:
        import submitit
    except ImportError:
        raise CifarlabError("--launcher slurm needs submitit: pip install 'cifarlab[slurm]'") from None
    return submitit


# Command-line names of SLURM options -> submitit's AutoExecutor parameters.
SLURM_PARAMETERS = {"partition": "slurm_partition", "time": "timeout_min", "gpus": "gpus_per_node",
                    "cpus": "cpus_per_task", "mem_gb": "mem_gb", "array_parallelism": "slurm_array_parallelism"}


def run_on_slurm(points: list[Point], runs_dir: Path, options: dict, on_done: Optional[Callable] = None) -> list[Outcome]:
    """Submit each unfinished point as one job (a job array) through submitit and wait for them.

    `options`: `cluster` ("slurm" by default; "local" or "debug" run the same jobs on this machine)
    and the keys of SLURM_PARAMETERS. Job logs go to <sweep>/slurm/.
    """
    submitit = _submitit()
    cluster = options.get("cluster") or "slurm"
    if cluster == "slurm" and shutil.which("sbatch") is None:
        raise CifarlabError("no SLURM here (sbatch not found); run on the cluster's login node, "
                            "or use --launcher local (--jobs N) on this machine")
    done, todo = _skip_finished(points, runs_dir)
    executor = submitit.AutoExecutor(folder=runs_dir.parent / "slurm" / "%j", cluster=cluster)
    parameters = {SLURM_PARAMETERS[k]: v for k, v in options.items() if k in SLURM_PARAMETERS and v is not None}
    executor.update_parameters(name=runs_dir.parent.name, **parameters)
    jobs = []
    if todo:
        with executor.batch():
            jobs = [executor.submit(_run_logged, *_submission(p, runs_dir)) for p in todo]
        for job, point in zip(jobs, todo):
            print(f"{point.name}: submitted as job {job.job_id}", file=sys.stderr, flush=True)
    owners = {job.job_id: (point, runs_dir / point.name) for job, point in zip(jobs, todo)}
    finished_jobs = submitit.helpers.as_completed(jobs, poll_frequency=10 if cluster == "slurm" else 0.5)
    completed = ((*owners[job.job_id], functools.partial(_job_result, job)) for job in finished_jobs)
    return _collect(points, done, completed, on_done)


def _job_result(job):
    try:
        return job.result()
    except Exception as exc:  # submitit raises FailedJobError holding the job's traceback as text
        message = _user_error_message(str(exc))
        if message is None:
            raise
        raise CifarlabError(message) from exc


# The last line of a job's traceback when it ended on a user error: CifarlabError or its subclass
# RunFolderBusy (another process holds the point's run folder), printed with or without its module.
_USER_ERROR = re.compile(r"(?:^|[\s.])(?:CifarlabError|RunFolderBusy): (.*)$", re.MULTILINE)


def _user_error_message(job_error: str) -> Optional[str]:
    """The message of a CifarlabError raised inside a job, found in the traceback text submitit hands back."""
    found = _USER_ERROR.findall(job_error)
    return found[-1].strip() if found else None
