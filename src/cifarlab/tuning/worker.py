"""A study worker: claim a trial, train it, tell Optuna how it ended; again until the study has its trials.

Any number of workers (this process, local worker processes, cluster jobs) may work on one study
at once. Claiming happens under a lock file in the study folder, so the count of finished and
running trials and the creation of the next trial are one step: the study ends with exactly the
trials asked for. (Workers on several machines with a storage outside the study folder's file
system may overshoot by a trial each.)
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, TextIO

from cifarlab.errors import CifarlabError
from cifarlab.tuning import algorithms
from cifarlab.tuning.liveness import RETRY_OF, Heartbeat, recover_dead_trials, worker_identity
from cifarlab.tuning.objective import TrialOutcome, run_trial, trial_folder_name
from cifarlab.tuning.space import distributions, grid_size, grid_values
from cifarlab.tuning.storage import LOGS, StudyPlace, load_study
from cifarlab.tuning.tune_file import TuneSpec

CLAIM_LOCK = ".claim.lock"
FAILURES_IN_A_ROW = 3  # then the cause is the setup, not the point: stop and say so


@dataclass
class WorkerReport:
    """What one worker did: trial number -> state, the error that stopped it, or the exit code of a stop."""

    states: dict[int, str] = field(default_factory=dict)
    error: Optional[str] = None
    exit_code: Optional[int] = None


def target_trials(spec: TuneSpec) -> int:
    """The finished trials the study ends with: `trials`, or every grid point when the grid has fewer."""
    if spec.sampler["name"] == "grid":
        return min(spec.trials, grid_size(grid_values(spec.space, str(spec.path))))
    return spec.trials


@contextlib.contextmanager
def claim_lock(folder: Path) -> Iterator[None]:
    """Hold the study folder's claim lock (an flock where the system has one)."""
    try:
        import fcntl
    except ImportError:  # no flock here: workers on this system may overshoot by a trial
        yield
        return
    with open(Path(folder) / CLAIM_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def claim_trial(study, spec: TuneSpec, folder: Path):
    """A new trial (a queued retry first) with this process as its worker, or None when the study has its trials."""
    from optuna.trial import TrialState

    with claim_lock(folder):
        recover_dead_trials(study)
        counted = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
        if len(counted) >= target_trials(spec):
            return None
        trial = study.ask(distributions(spec.space))
        for key, value in worker_identity().items():
            trial.set_user_attr(key, value)
    return trial


def open_worker_study(spec: TuneSpec, place: StudyPlace, worker_index: int):
    """The study with this worker's sampler and pruner; a seeded sampler's seed moves per worker and per restart."""
    study = load_study(place)
    offset = algorithms.WORKER_SEED_STRIDE * worker_index + len(study.get_trials(deepcopy=False))
    study.sampler = algorithms.build_sampler(spec.sampler, spec.space, str(spec.path), seed_offset=offset)
    study.pruner = algorithms.build_pruner(spec.pruner, str(spec.path))
    return study


def run_worker(spec: TuneSpec, place: StudyPlace, worker_index: int = 0, log_to_files: bool = False) -> WorkerReport:
    """Work on the study until it has its trials, a trial is stopped by a signal, or trials keep failing."""
    study = open_worker_study(spec, place, worker_index)
    report, failures = WorkerReport(), 0
    while True:
        trial = claim_trial(study, spec, place.folder)
        if trial is None:
            return report
        outcome = _attempt(study, trial, spec, place, log_to_files)
        report.states[trial.number] = outcome.state
        _say(trial, outcome, spec)
        if outcome.state == "stopped":
            report.exit_code = outcome.exit_code or 130
            return report
        failures = failures + 1 if outcome.state == "failed" else 0
        if failures >= FAILURES_IN_A_ROW:
            report.error = (f"{failures} trials in a row failed, the last ({trial_folder_name(trial.number)}) with: "
                            f"{outcome.message}; fix the cause and run the same command again")
            return report


def _attempt(study, trial, spec: TuneSpec, place: StudyPlace, log_to_files: bool) -> TrialOutcome:
    """Run the trial and tell Optuna its end; a trial stopped before its end is queued again."""
    from optuna.trial import TrialState

    try:
        with _progress_stream(place, trial.number, log_to_files) as stream, Heartbeat(trial):
            outcome = run_trial(spec, place.folder, trial, progress_stream=stream)
    except BaseException:
        _tell_stopped(study, trial)  # Ctrl-C outside the training loop (loading data, the final evaluation)
        raise
    if outcome.state == "complete":
        study.tell(trial, outcome.value)
    elif outcome.state == "pruned":
        study.tell(trial, state=TrialState.PRUNED)
    elif outcome.state == "failed":
        study.tell(trial, state=TrialState.FAIL)
    else:
        _tell_stopped(study, trial)
    return outcome


def _tell_stopped(study, trial) -> None:
    from optuna.trial import TrialState

    study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
    study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})


@contextlib.contextmanager
def _progress_stream(place: StudyPlace, number: int, to_file: bool) -> Iterator[Optional[TextIO]]:
    """Where a trial's progress goes: the terminal (None), or logs/NNNN.log when workers share the terminal."""
    if not to_file:
        yield None
        return
    path = place.folder / LOGS / f"{trial_folder_name(number)}.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as log:
        yield log


def _say(trial, outcome: TrialOutcome, spec: TuneSpec) -> None:
    values = " ".join(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}" for key, value in trial.params.items())
    result = {"complete": f"{spec.metric} {outcome.value:.4f}" if outcome.value is not None else "complete",
              "pruned": outcome.message, "failed": f"failed: {outcome.message}",
              "stopped": "stopped; it will be tried again"}[outcome.state]
    print(f"trial {trial_folder_name(trial.number)} ({values}): {result}", file=sys.stderr, flush=True)


def worker_entry(spec_data: dict, place_data: dict, worker_index: int, log_to_files: bool) -> dict:
    """A worker process's or cluster job's whole work, with plain values in and out (they travel pickled)."""
    try:
        report = run_worker(TuneSpec.from_dict(spec_data), StudyPlace.from_dict(place_data), worker_index, log_to_files)
    except CifarlabError as exc:
        report = WorkerReport(error=str(exc))
    except KeyboardInterrupt:
        report = WorkerReport(exit_code=130)
    return {"states": report.states, "error": report.error, "exit_code": report.exit_code}
