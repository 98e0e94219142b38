"""bench/tta_views.py: a trained run's test top-1 under more test-time augmentation views, its own TTA mode
rebuilt from the views and checked against its eval_test.json."""

import json
import os
import subprocess
import sys

import pytest
import torch

from cifarlab.api import train
from tests.bench import BENCH_DIR, load_bench_script
from tests.conftest import tiny_recipe_data


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH_DIR / "tta_views.py"), *args], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> str:
    """LeNet trained for one epoch on 200 real CIFAR-10 images and scored on the test set with flip+translate TTA."""
    out = tmp_path_factory.mktemp("runs")
    run = train(tiny_recipe_data(name="tta_views", out_dir=str(out), eval={"tta": "flip_translate"}))
    return str(run.dir)


def test_every_weighting_sums_to_one_and_names_real_views():
    bench = load_bench_script("tta_views")
    assert len(bench.VIEWS) == 18
    for name, weights in bench.WEIGHTINGS.items():
        assert sum(weights.values()) == pytest.approx(1.0), name
        assert set(weights) <= set(bench.VIEWS), name


def test_a_view_of_the_model_sees_the_shifted_mirrored_batch():
    bench = load_bench_script("tta_views")
    batch = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    seen = bench.ViewOf(torch.nn.Identity(), (1, -1, True))(batch)
    # Content moves one pixel down and one left (reflect fill), then the mirror: row 1 of the view is row 0
    # of the batch, and the view's last column before the mirror, x[..., 3], is the reflection of column 3.
    unmirrored = seen.flip(-1)
    assert torch.equal(unmirrored[..., 1, :3], batch[..., 0, 1:])
    assert torch.equal(unmirrored[..., 1, 3], batch[..., 0, 2])


@pytest.mark.slow
def test_the_runs_own_tta_is_rebuilt_exactly_and_the_table_has_every_weighting(trained_run):
    out = _run(trained_run, trained_run)
    assert out.returncode == 0, out.stderr
    header, _, first, second, mean = out.stdout.strip().splitlines()
    names = [cell.strip() for cell in header.strip("|").split("|")][1:]
    assert names == list(load_bench_script("tta_views").WEIGHTINGS)
    cells = [cell.strip() for cell in first.strip("|").split("|")]
    scores = dict(zip(names, (float(cell.rstrip("%")) / 100 for cell in cells[1:])))
    recorded = json.loads((open(os.path.join(trained_run, "eval_test.json"))).read())["top1"]
    assert scores["flip_translate"] == pytest.approx(recorded, abs=1e-4)
    assert first.split("|")[2:] == second.split("|")[2:]  # the same run twice scores the same
    assert mean.startswith("| mean of 2 |")


def test_a_folder_that_is_not_a_run_is_one_error_line(tmp_path):
    out = _run(str(tmp_path / "missing"))
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [out.stderr.strip()]
    assert out.stderr.startswith("cifarlab: error:") and "not a cifarlab run folder" in out.stderr
