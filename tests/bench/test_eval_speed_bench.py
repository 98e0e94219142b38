"""bench/eval_speed.py: a recipe's evaluation pass in full precision with glibc's defaults, with the run's
precision and memory format, and with the allocator setting too, each in fresh processes, and the ratios."""

import os
import subprocess
import sys

import pytest
import torch

from cifarlab.training.allocator import glibc_available
from cifarlab.training.step import resolve_precision
from tests.bench import BENCH_DIR, load_bench_script


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH_DIR / "eval_speed.py"), *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.mark.slow
def test_each_setting_scores_as_it_says():
    bench = load_bench_script("eval_speed")
    fp32 = bench.measure("quick", "fp32 system", 100)
    run = bench.measure("quick", "run auto", 100)
    assert fp32["precision"] == "fp32" and fp32["applied"] is False
    # The demo trains in bf16 where the CPU has bf16 units, and so it is scored.
    assert run["precision"] == resolve_precision("auto", torch.device("cpu"))
    assert run["applied"] is glibc_available()
    for measured in (fp32, run):
        assert measured["img_s"] > 0 and measured["tta"] == "flip_translate" and measured["batch"] == 1000
        assert measured["side"] == 32 and measured["faults"] > 0


def test_the_rounds_rotate_the_order_of_the_settings():
    bench = load_bench_script("eval_speed")
    order = []
    runs = bench.alternate(3, lambda setting, round_index: order.append(setting) or {"img_s": len(order)},
                           bench.SETTINGS)
    assert order[:3] == list(bench.SETTINGS) and order[3:6] == list(bench.SETTINGS[1:] + bench.SETTINGS[:1])
    assert all(len(measured) == 3 for measured in runs.values())


@pytest.mark.slow
@pytest.mark.skipif(not glibc_available(), reason="the allocator settings differ only under glibc")
def test_the_table_gives_the_three_rates_and_their_ratios():
    out = _run("--recipes", "quick", "--images", "200", "--rounds", "1")
    assert out.returncode == 0, out.stderr
    row = next(line for line in out.stdout.splitlines() if line.startswith("| quick |"))
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    fp32, run_system, run_auto = (float(cell.replace(",", "")) for cell in cells[5:8])
    # The rates are printed to 0.1 img/s, the ratios from the unrounded medians.
    assert float(cells[8].rstrip("x")) == pytest.approx(run_auto / fp32, abs=0.011)
    assert float(cells[9].rstrip("x")) == pytest.approx(run_auto / run_system, abs=0.011)
    faults_auto, faults_system = (int(x.replace(",", "")) for x in cells[10].split(" / "))
    assert faults_auto < faults_system


def test_an_unknown_recipe_is_named():
    out = _run("--recipes", "quick", "no_such_recipe")
    assert out.returncode != 0 and "no_such_recipe" in out.stderr and "cifarlab recipes" in out.stderr
