"""One process at a time per run folder: a second writer gets one message and touches nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cifarlab.cli import main
from cifarlab.config import recipe_from_dict
from cifarlab.runner.run import run_recipe
from cifarlab.runs import WALL_FILE
from cifarlab.runs.lock import LOCK_FILE, RunFolderBusy, hold_run_folder, holder
from cifarlab.sweeps.sweep_point import run_point
from tests.conftest import tiny_recipe_data

SRC = str(Path(__file__).resolve().parents[1] / "src")
HOLD = "import sys, time\nfrom cifarlab.runs.lock import hold_run_folder\nwith hold_run_folder(sys.argv[1]):\n" \
       "    print('held', flush=True)\n    time.sleep(120)\n"


@pytest.fixture
def other_process():
    """Start a process that holds a folder until it is killed; yields the starter."""
    started = []

    def start(folder: Path) -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": SRC}
        process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True, env=env)
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_folder_held_elsewhere_is_refused_naming_the_holder_until_that_process_dies(tmp_path, other_process):
    process = other_process(tmp_path)
    assert holder(tmp_path) == f"pid {process.pid} on {os.uname().nodename}"
    with pytest.raises(RunFolderBusy, match=rf"in use by another cifarlab process \(pid {process.pid} on .*\); wait"):
        with hold_run_folder(tmp_path):
            pass
    process.send_signal(signal.SIGKILL)  # no clean-up runs: the kernel drops the lock
    process.wait()
    assert holder(tmp_path) is None
    with hold_run_folder(tmp_path):
        with hold_run_folder(tmp_path):  # re-entrant within one process
            assert (tmp_path / LOCK_FILE).is_file() and holder(tmp_path) is None
        assert (tmp_path / LOCK_FILE).is_file()  # the outer hold still has it
    assert not (tmp_path / LOCK_FILE).exists()  # let go: nothing left in the folder


@pytest.mark.slow
def test_resuming_a_run_another_process_is_training_is_one_message_and_changes_nothing(tmp_path, cifar10, capsys,
                                                                                      other_process):
    data = tiny_recipe_data(name="busy", out_dir=str(tmp_path / "runs"), eval={"test": False})
    run_dir = run_recipe(recipe_from_dict(data, source="test"), stop_after=2).run_dir
    before = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    process = other_process(run_dir)
    assert main(["train", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cifarlab: error: {run_dir} is in use by another cifarlab process (pid {process.pid}")
    assert len(err.splitlines()) == 1
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir() if p.name != LOCK_FILE} == before
    process.kill()
    process.wait()
    assert main(["train", "--resume", str(run_dir)]) == 0  # once it is gone, the run continues
    assert not (run_dir / LOCK_FILE).exists()


def test_a_sweep_started_again_neither_clears_nor_resumes_a_point_in_progress(tmp_path, cifar10, other_process):
    point = tmp_path / "runs" / "seed0"
    point.mkdir(parents=True)
    (point / "recipe.yaml").write_text("name: seed0\n")  # a run in its first epoch: no last.pt yet
    other_process(point)
    calls = []
    recipe = recipe_from_dict(tiny_recipe_data(name="seed0"), source="test")
    with pytest.raises(RunFolderBusy):
        run_point(recipe, point, runner=lambda *args, **kwargs: calls.append(args))
    assert calls == [] and (point / "recipe.yaml").read_text() == "name: seed0\n"
    assert not (point / WALL_FILE).exists()


@pytest.mark.slow
def test_a_new_run_skips_a_folder_another_process_has_just_claimed(tmp_path, cifar10, other_process):
    claimed = tmp_path / "runs" / "race"
    claimed.mkdir(parents=True)
    other_process(claimed)  # started a moment earlier: it holds the folder and has written nothing yet
    data = tiny_recipe_data(name="race", out_dir=str(tmp_path / "runs"), eval={"test": False}, train={"steps": 2})
    result = run_recipe(recipe_from_dict(data, source="test"))
    assert result.status == "finished" and result.run_dir == tmp_path / "runs" / "race-2"
    assert [p.name for p in claimed.iterdir()] == [LOCK_FILE]  # the other process's folder is untouched


def test_a_file_system_without_flock_leaves_the_folder_unguarded_instead_of_refusing_it(tmp_path, monkeypatch):
    import errno

    import cifarlab.runs.lock as run_lock

    def no_flock(fd, operation):
        raise OSError(errno.EOPNOTSUPP, "Operation not supported")

    monkeypatch.setattr(run_lock.fcntl, "flock", no_flock)
    with hold_run_folder(tmp_path):
        assert holder(tmp_path) is None
    assert not (tmp_path / LOCK_FILE).exists()


def test_a_disk_too_full_for_the_lock_file_is_one_message_and_no_folder(tmp_path, cifar10, monkeypatch):
    import errno

    import cifarlab.runs.lock as run_lock
    from cifarlab.errors import CifarlabError

    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(run_lock.os, "pwrite", full)
    recipe = recipe_from_dict(tiny_recipe_data(name="full", out_dir=str(tmp_path / "runs")), source="test")
    with pytest.raises(CifarlabError, match=r"cannot write .*full/.lock \(No space left on device\): the disk is full"):
        run_recipe(recipe)
    assert not (tmp_path / "runs" / "full").exists()
