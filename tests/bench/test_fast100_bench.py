"""bench/fast100.py: rows with the issue's fields, ResNet-18 sized to a training time, and the ladder plot."""

import json
import sys

import pytest
import yaml

from tests.bench import load_bench_script
from tests.conftest import tiny_recipe_data


def test_ladder_points_take_the_mean_top1_and_median_time_of_each_recipe_and_budget_and_leave_out_pilots():
    bench = load_bench_script("fast100")
    rows = [{"recipe": "a.yaml", "top1": 0.70, "train_s": 600.0}, {"recipe": "a.yaml", "top1": 0.74, "train_s": 660.0},
            {"recipe": "a.yaml", "top1": 0.72, "train_s": 1200.0},
            {"recipe": "b.yaml", "top1": 0.77, "train_s": 3000.0},
            {"recipe": "b.yaml", "top1": 0.79, "train_s": 3100.0, "overrides": ["augment.cutout=12"]},  # a pilot
            {"recipe": "r18.yaml", "budget_s": 900.0, "top1": 0.30, "train_s": 880.0}]
    points = bench.ladder_points(rows)
    assert points["fast100 recipes"] == [(11.0, pytest.approx(72.0), 3), (50.0, pytest.approx(77.0), 1)]
    assert points["ResNet-18, FDU recipe"] == [(880.0 / 60, pytest.approx(30.0), 1)]


@pytest.mark.slow
def test_runs_append_their_rows_and_resnet18_is_trained_for_the_epochs_that_fill_its_time(tmp_path, cifar10, monkeypatch,
                                                                                          capsys):
    bench = load_bench_script("fast100")
    import cpu_peak  # on sys.path once the bench is loaded

    monkeypatch.setattr(cpu_peak, "peak_gflops", lambda device: {"bf16_conv": 1000.0})
    recipe, stand_in = tmp_path / "fast.yaml", tmp_path / "r18.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_data(name="fast", train={"steps": 4})))
    # The ResNet-18 stand-in trains on CIFAR-10 (the bench asks for CIFAR-100; the tiny slice keeps it short).
    stand_in.write_text(yaml.safe_dump(tiny_recipe_data(name="r18", data={"dataset": "cifar10", "train_limit": 320})))
    monkeypatch.setattr(bench, "CIFAR100", [])
    monkeypatch.setattr(bench, "TIMING_STEPS", 3)
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["fast100.py", "--recipe", str(recipe), "--seeds", "0", "--resnet18", "2",
                                      "--resnet18-recipe", str(stand_in)])
    bench.main()
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "results" / "cifar100_cpu.jsonl").read_text().splitlines()]
    assert [r["recipe"] for r in rows] == [str(recipe), str(stand_in)]
    for row in rows:
        for key in ("seed", "top1", "tta", "train_s", "wall_s", "gflops", "peak_share", "device", "date"):
            assert row[key] is not None, key
        assert row["peak_share"] == pytest.approx(row["gflops"] / 1000.0, abs=1e-3)
    # 2 s of training at the timing run's pace: its epochs override is what that pace gives for 2 s.
    epochs = float(next(o for o in rows[1]["overrides"] if o.startswith("train.epochs=")).split("=")[1])
    assert rows[1]["budget_s"] == 2.0 and epochs > 0
    assert f"ResNet-18 (FDU recipe) for 2 s of training here: {epochs} epochs" in out
    assert "of the bf16 conv peak 1000" in out
    assert (tmp_path / "results" / "cifar100_ladder_cpu.png").stat().st_size > 10_000
