"""bench/fast100.py: rows with the issue's fields, ResNet-18 sized to a training time, and the ladder plot."""

import json
import sys

import pytest
import yaml

from tests.bench import load_bench_script
from tests.conftest import tiny_recipe_data


def test_ladder_points_take_each_shipped_recipes_mean_top1_and_median_time_and_leave_out_pilots_and_old_versions():
    bench = load_bench_script("fast100")
    rows = [{"recipe": "a.yaml", "top1": 0.70, "train_s": 600.0, "settings": "a1"},
            {"recipe": "a.yaml", "top1": 0.74, "train_s": 660.0, "settings": "a1"},
            {"recipe": "a.yaml", "top1": 0.72, "train_s": 1200.0, "settings": "a1"},
            {"recipe": "b.yaml", "top1": 0.75, "train_s": 2900.0, "settings": "b0"},  # b.yaml before its last edit
            {"recipe": "b.yaml", "top1": 0.79, "train_s": 3100.0, "settings": "b2",
             "overrides": ["augment.cutout=12"]},  # a pilot: its overrides change the recipe
            {"recipe": "b.yaml", "top1": 0.76, "train_s": 3300.0, "settings": "b1",
             "overrides": ["train.epochs=32"]},  # overrides the file has since taken up: the recipe as shipped
            {"recipe": "b.yaml", "top1": 0.78, "train_s": 3000.0, "settings": "b1"},
            {"recipe": "r18.yaml", "budget_s": 900.0, "top1": 0.30, "train_s": 880.0, "settings": "r"}]
    points = bench.ladder_points(rows, {"a.yaml": "a1", "b.yaml": "b1"})
    assert points["fast100 recipes"] == [(11.0, pytest.approx(72.0), 3), (52.5, pytest.approx(77.0), 2)]
    assert points["ResNet-18, FDU recipe"] == [(880.0 / 60, pytest.approx(30.0), 1)]


def test_the_shipped_settings_are_the_digest_of_each_recipe_file_as_it_reads_now(tmp_path):
    bench = load_bench_script("fast100")
    recipe = tmp_path / "fast.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_data(name="fast", train={"steps": 4})))
    before = bench.shipped_settings([{"recipe": str(recipe)}, {"recipe": "gone.yaml"}])
    assert list(before) == [str(recipe)]  # a recipe file no longer there has no shipped version
    recipe.write_text(yaml.safe_dump(tiny_recipe_data(name="fast", train={"steps": 5})))
    assert bench.shipped_settings([{"recipe": str(recipe)}]) != before


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
    monkeypatch.setattr(bench, "TIMING_LOG_EVERY", 1)
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["fast100.py", "--recipe", str(recipe), "--seeds", "0", "--resnet18", "2",
                                      "--resnet18-recipe", str(stand_in)])
    bench.main()
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "results" / "cifar100_cpu.jsonl").read_text().splitlines()]
    assert [r["recipe"] for r in rows] == [str(recipe), str(stand_in)]
    for row in rows:
        for key in ("seed", "top1", "tta", "train_s", "wall_s", "gflops", "peak_share", "settings", "device", "date"):
            assert row[key] is not None, key
        assert row["peak_share"] == pytest.approx(row["gflops"] / 1000.0, abs=1e-3)
    # 2 s of training at the timing run's pace: its epochs override is what that pace gives for 2 s.
    epochs = float(next(o for o in rows[1]["overrides"] if o.startswith("train.epochs=")).split("=")[1])
    assert rows[1]["budget_s"] == 2.0 and epochs > 0
    assert f"ResNet-18 (FDU recipe) for 2 s of training here: {epochs} epochs" in out
    assert "of the bf16 conv peak 1000" in out
    assert (tmp_path / "results" / "cifar100_ladder_cpu.png").stat().st_size > 10_000


def test_the_plot_names_the_machine_of_its_rows_not_the_one_that_redraws_it(monkeypatch):
    bench = load_bench_script("fast100")
    monkeypatch.setattr(bench, "device_name", lambda: "this process")
    assert bench.rows_device([{"device": "x86_64 cpu x2"}, {"device": "x86_64 cpu x2"}]) == "x86_64 cpu x2"
    assert bench.rows_device([{"device": "b"}, {"device": "a"}]) == "a, b"
    assert bench.rows_device([]) == "this process"
