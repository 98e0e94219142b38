"""`cifarlab tune` end to end on the tiny recipe: pruning, continuing, a killed worker, several workers, SLURM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml
from optuna.trial import TrialState

from cifarlab.cli import main
from cifarlab.tuning.liveness import PID, RETRY_OF
from tests.tuning.conftest import write_tune_file

pytestmark = pytest.mark.slow  # its fixtures train several real runs

REPO = Path(__file__).resolve().parents[2]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)


def _study(folder: Path) -> optuna.Study:
    return optuna.load_study(study_name=folder.name, storage=f"sqlite:///{folder / 'study.db'}")


def _finished(study: optuna.Study) -> list:
    return study.get_trials(states=FINISHED)


def test_a_seeded_study_prunes_poor_trials_and_each_trial_is_an_ordinary_run(seeded_study):
    study = _study(seeded_study)
    trials = study.get_trials()
    assert len(trials) == 6 and len(_finished(study)) == 6
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert pruned and any(t.state == TrialState.COMPLETE for t in trials)
    assert all(t.intermediate_values for t in pruned if "diverged" not in t.user_attrs)  # pruned on a reported epoch
    # A trial that diverged before its first checkpoint has no folder left, and says so.
    assert all(t.user_attrs["run_dir"] is None or (seeded_study / t.user_attrs["run_dir"]).is_dir() for t in trials)
    best = study.best_trial
    run = seeded_study / "trials" / f"{best.number:04d}"
    assert best.user_attrs["run_dir"] == f"trials/{best.number:04d}" and (run / "recipe.yaml").is_file()
    assert (run / "eval_val.json").is_file() and not (run / "eval_test.json").exists()  # never scored on test
    command = (run / "retrain_command.txt").read_text().strip()
    assert command == best.user_attrs["command"] and command.startswith("cifarlab train ")
    assert f"optim.lr={best.params['optim.lr']!r}" in command and "eval.test" not in command
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE


@pytest.mark.slow
def test_running_the_same_command_again_redoes_no_finished_trial(seeded_study, recipe_file, tiny_cache, tmp_path):
    before = [(t.number, t.state, t.value) for t in _study(seeded_study).get_trials()]
    tune = write_tune_file(seeded_study.parent, recipe_file)
    assert main(["tune", str(tune), "--out", str(seeded_study)]) == 0
    assert [(t.number, t.state, t.value) for t in _study(seeded_study).get_trials()] == before


def test_a_study_folder_refuses_another_tune_file(seeded_study, recipe_file, tiny_cache, tmp_path, capsys):
    other = write_tune_file(tmp_path, recipe_file, space={"optim.lr": {"low": 0.01, "high": 0.1}})
    assert main(["tune", str(other), "--out", str(seeded_study)]) == 2
    err = capsys.readouterr().err
    assert "holds a study of another tune file (it differs in space)" in err and err.count("\n") == 1


def _wait_for_metrics(trials: Path, process: subprocess.Popen, timeout_s: float = 120) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        for metrics in trials.glob("*/metrics.jsonl"):
            if metrics.stat().st_size > 0:
                return metrics.parent
        time.sleep(0.02)
    raise AssertionError(f"no trial wrote metrics (exit code {process.poll()})")


@pytest.mark.slow
def test_a_trial_killed_mid_run_is_failed_and_tried_again(recipe_file, tiny_cache, tmp_path):
    tune, out = write_tune_file(tmp_path, recipe_file), tmp_path / "study"
    process = subprocess.Popen([sys.executable, "-m", "cifarlab", "tune", str(tune), "--out", str(out)],
                               cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        killed_dir = _wait_for_metrics(out / "trials", process)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()  # reaped: its pid no longer exists
    killed = int(killed_dir.name)
    assert _study(out).get_trials()[killed].state == TrialState.RUNNING  # nobody told Optuna

    assert main(["tune", str(tune), "--out", str(out)]) == 0
    study = _study(out)
    trials = study.get_trials()
    assert len(_finished(study)) == 6 and trials[killed].state == TrialState.FAIL
    (retry,) = [t for t in trials if t.user_attrs.get(RETRY_OF) == killed]
    assert retry.params == trials[killed].params and retry.state in FINISHED
    assert "cut off; retried as" in (out / "trials.md").read_text()


@pytest.mark.slow
def test_sigterm_stops_the_trial_cleanly_fails_it_and_queues_its_values_again(recipe_file, tiny_cache, tmp_path):
    tune, out = write_tune_file(tmp_path, recipe_file), tmp_path / "study"
    process = subprocess.Popen([sys.executable, "-m", "cifarlab", "tune", str(tune), "--out", str(out)],
                               cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO / "src")},
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        stopped = int(_wait_for_metrics(out / "trials", process).name)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    assert process.returncode == 143 and "Continue with the same command" in err
    trials = _study(out).get_trials()
    assert trials[stopped].state == TrialState.FAIL  # stopped before its end: never counted as complete
    (queued,) = [t for t in trials if t.state == TrialState.WAITING]
    assert queued.user_attrs[RETRY_OF] == stopped


def test_a_journal_file_holds_the_study_and_the_report_finds_it(recipe_file, tiny_cache, tmp_path):
    tune, out, journal = write_tune_file(tmp_path, recipe_file, trials=1), tmp_path / "study", tmp_path / "shared.journal"
    assert main(["tune", str(tune), "--out", str(out), "--storage", str(journal)]) == 0
    assert journal.is_file() and not (out / "study.db").exists()
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
    (trial,) = optuna.load_study(study_name="study", storage=storage).get_trials()
    assert trial.state in FINISHED
    (out / "trials.csv").unlink()
    assert main(["report", str(out)]) == 0 and (out / "trials.csv").is_file()


@pytest.mark.slow
def test_two_local_workers_share_one_study(recipe_file, tiny_cache, tmp_path):
    tune, out = write_tune_file(tmp_path, recipe_file, trials=4), tmp_path / "study"
    assert main(["tune", str(tune), "--out", str(out), "--jobs", "2"]) == 0
    study = _study(out)
    assert len(study.get_trials()) == 4 and len(_finished(study)) == 4
    assert len({t.user_attrs[PID] for t in study.get_trials()}) == 2
    assert os.getpid() not in {t.user_attrs[PID] for t in study.get_trials()}
    assert len(list((out / "logs").glob("*.log"))) == 4  # progress went to a log per trial, not the shared terminal


@pytest.mark.slow
def test_slurm_launcher_runs_workers_through_submitit(recipe_file, tiny_cache, tmp_path):
    pytest.importorskip("submitit")
    tune, out = write_tune_file(tmp_path, recipe_file, trials=1), tmp_path / "study"
    assert main(["tune", str(tune), "--out", str(out), "--launcher", "slurm", "--slurm-cluster", "local",
                 "--slurm-cpus", "1"]) == 0
    (trial,) = _study(out).get_trials()
    assert trial.state in FINISHED and trial.user_attrs[PID] != os.getpid()
    assert any((out / "slurm").rglob("*_log.out"))  # submitit's own job logs


def test_slurm_without_submitit_names_the_extra_and_creates_nothing(recipe_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "submitit", None)
    code = main(["tune", str(write_tune_file(tmp_path, recipe_file)), "--launcher", "slurm", "--out", str(tmp_path / "s")])
    assert code == 2 and "pip install 'cifarlab[slurm]'" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_val_loss_is_minimised(recipe_file, tiny_cache, tmp_path):
    tune = write_tune_file(tmp_path, recipe_file, trials=1, metric="val.loss",
                           space={"optim.lr": {"low": 0.01, "high": 0.1, "log": True}})
    assert main(["tune", str(tune), "--out", str(tmp_path / "study")]) == 0
    study = _study(tmp_path / "study")
    assert study.direction == optuna.study.StudyDirection.MINIMIZE
    (trial,) = study.get_trials()
    scores = yaml.safe_load((tmp_path / "study" / trial.user_attrs["run_dir"] / "eval_val.json").read_text())
    assert trial.value == pytest.approx(scores["loss"])
