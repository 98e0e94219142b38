"""Run a study: create (or continue) it in its folder, let the workers train its trials, write its report.

Running the same command again continues the study to its number of finished (complete or pruned)
trials: finished trials are never redone, and a trial whose worker was killed is marked FAIL and its
values tried again (`liveness`). A study folder holds one study: continuing it with another recipe,
space or metric is refused.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cifarlab.atomic import make_dirs
from cifarlab.errors import CifarlabError
from cifarlab.tuning.liveness import recover_dead_trials
from cifarlab.tuning.optuna_extra import import_optuna
from cifarlab.tuning.report import StudyReport, write_study_report
from cifarlab.tuning.storage import (
    IDENTITY_ATTR,
    MARKER,
    StudyPlace,
    load_study,
    open_storage,
    study_identity,
    study_place,
    write_marker,
)
from cifarlab.tuning.tune_file import TuneSpec
from cifarlab.tuning.worker import claim_lock, run_worker

LAUNCHERS = ("local", "slurm")


@dataclass
class StudyResult:
    """The study's place, its report, and the exit code it ends with (0, or 130/143 when a trial was stopped by a signal)."""

    place: StudyPlace
    report: StudyReport
    exit_code: int = 0


def default_study_folder(spec: TuneSpec, tune_file: str | Path) -> Path:
    """The tune file's `out:`, else tunes/<tune file stem>."""
    return spec.out or Path("tunes") / Path(tune_file).stem


def create_study(spec: TuneSpec, folder: Path, storage: Optional[str] = None) -> StudyPlace:
    """Create the study folder and the study in its storage, or check that the existing one is this study.

    A folder this call created is removed again when the study cannot be created in it.
    """
    optuna = import_optuna()
    place = study_place(folder, storage)
    created = not place.folder.exists()
    make_dirs(place.folder)
    try:
        study = optuna.create_study(storage=open_storage(place.storage), study_name=place.name, load_if_exists=True,
                                    direction=spec.objective.direction)
        _check_same_study(study, spec, place)
        if not (place.folder / MARKER).is_file():
            write_marker(place, spec, default_storage=storage is None)
    except BaseException:
        if created:
            shutil.rmtree(place.folder, ignore_errors=True)
        raise
    return place


def _check_same_study(study, spec: TuneSpec, place: StudyPlace) -> None:
    identity = study_identity(spec)
    saved = study.user_attrs.get(IDENTITY_ATTR)
    if saved is None:
        study.set_user_attr(IDENTITY_ATTR, identity)
        return
    differ = sorted(key for key in identity.keys() | saved.keys() if identity.get(key) != saved.get(key))
    if differ:
        raise CifarlabError(f"{place.folder} holds a study of another tune file (it differs in {', '.join(differ)}); "
                            "give this one another --out, or delete that folder to start it again")


def run_study(spec: TuneSpec, folder: Path, jobs: int = 1, storage: Optional[str] = None, launcher: str = "local",
              slurm: Optional[dict] = None) -> StudyResult:
    """Bring the study in `folder` to `spec.trials` finished trials with `jobs` workers, then write its report."""
    if jobs < 1:
        raise CifarlabError(f"--jobs {jobs}: give the number of workers, 1 or more")
    if launcher not in LAUNCHERS:
        raise CifarlabError(f"unknown launcher {launcher!r}; use --launcher local or --launcher slurm")
    if launcher == "slurm":
        from cifarlab.tuning.launch import slurm_submitter

        slurm_submitter(slurm or {})  # no submitit or no SLURM: say so before creating anything
    place = create_study(spec, folder, storage)
    _recover(place)
    if launcher == "slurm":
        from cifarlab.tuning.launch import run_slurm_workers

        reports = run_slurm_workers(spec, place, jobs, slurm or {})
    elif jobs > 1:
        from cifarlab.tuning.launch import run_local_workers

        reports = run_local_workers(spec, place, jobs)
    else:
        worker = run_worker(spec, place)
        reports = [{"states": worker.states, "error": worker.error, "exit_code": worker.exit_code}]
    report = write_study_report(place.folder)
    errors = [r["error"] for r in reports if r.get("error")]
    if errors:
        raise CifarlabError("; ".join(dict.fromkeys(errors)))
    stopped = [r["exit_code"] for r in reports if r.get("exit_code")]
    return StudyResult(place, report, stopped[0] if stopped else 0)


def _recover(place: StudyPlace) -> None:
    """Before any worker starts: fail and requeue the trials whose workers died in an earlier run."""
    with claim_lock(place.folder):
        recovered = recover_dead_trials(load_study(place))
    if recovered:
        names = ", ".join(f"{n:04d}" for n in recovered)
        print(f"trials {names} were cut off (their worker died): marked failed, their values queued again",
              file=sys.stderr, flush=True)
