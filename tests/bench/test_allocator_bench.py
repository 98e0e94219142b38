"""bench/allocator.py: the same recipe's training step with freed memory kept in the process and with the
C library's defaults, each in fresh processes, and the ratio."""

import os
import re
import subprocess
import sys

import pytest

from cifarlab.training.allocator import glibc_available
from tests.bench import BENCH_DIR, load_bench_script


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH_DIR / "allocator.py"), *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_a_child_applies_its_setting_and_reports_its_step():
    bench = load_bench_script("allocator")
    auto = bench.measure("quick", "auto", steps=1, warmup=1)
    system = bench.measure("quick", "system", steps=1, warmup=1)
    assert auto["applied"] is glibc_available() and system["applied"] is False
    for run in (auto, system):
        assert run["img_s"] > 0 and run["batch"] == 512 and run["faults"] > 0 and run["peak_mib"] > 100


@pytest.mark.slow
@pytest.mark.skipif(not glibc_available(), reason="the two settings differ only under glibc")
def test_the_table_gives_both_rates_and_their_ratio():
    out = _run("--recipes", "quick", "--rounds", "1", "--steps", "1", "--warmup", "2")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("| quick |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    auto, system, ratio = float(cells[3].replace(",", "")), float(cells[4].replace(",", "")), cells[5]
    assert ratio == f"{auto / system:.2f}x"
    faults_auto, faults_system = (int(x.replace(",", "")) for x in re.findall(r"[\d,]+", cells[6]))
    assert faults_auto < faults_system  # the point of the setting, visible even in one short step


def test_an_unknown_recipe_is_named():
    out = _run("--recipes", "quick", "no_such_recipe")
    assert out.returncode != 0 and "no_such_recipe" in out.stderr and "cifarlab recipes" in out.stderr


@pytest.mark.slow
def test_whole_training_runs_are_compared_by_their_training_time(cifar10):
    quick = str(BENCH_DIR.parent / "configs" / "quick.yaml")
    out = _run("--train", quick, "data.train_limit=1024", "data.val_size=256", "train.epochs=1",
               "train.batch_size=256", "--rounds", "1")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith(f"| {quick} "))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    auto, system = float(cells[1]), float(cells[2])
    # The times are printed to 0.1 s, the ratio from the unrounded medians.
    assert auto > 0 and system > 0 and float(cells[3]) == pytest.approx(auto / system, abs=0.1)
    # Each setting's own runs are listed under the table.
    listed = [line.split(":")[0] for line in out.stdout.splitlines() if ": training s " in line]
    assert listed == ["auto", "system"]


def test_a_failing_training_run_is_reported_with_its_error(cifar10):
    out = _run("--train", str(BENCH_DIR.parent / "configs" / "quick.yaml"), "train.no_such_key=1", "--rounds", "1")
    assert out.returncode != 0 and "no_such_key" in out.stderr
