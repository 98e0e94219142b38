"""bench/recipe_speed.py: one training step per shipped recipe, at the recipe's own side, batch and precision."""

import sys

import pytest
import torch

from cifarlab.config.loader import load_recipe
from cifarlab.config.shipped import shipped_recipes
from tests.bench import load_bench_script


def test_the_few_shot_recipes_are_the_base_and_those_extending_it_and_train_as_cifarlab_fewshot_runs_them():
    bench = load_bench_script("recipe_speed")
    shipped = shipped_recipes()
    assert {name for name, path in shipped.items() if bench.is_fewshot(path)} == {
        "bit_fewshot", "bit_fewshot_r50x3", "bit_p_offline_cpu", "bit_transfer_offline", "bit_transfer_offline_cpu"}
    cpu = torch.device("cpu")
    # The CPU transfer recipe: fewshot.crop 64; its 10-shot set of 100 images is drawn with replacement into
    # whole batches of train.batch_size 128, as the batch pipeline does for any set smaller than a batch.
    shape = bench.step_shape(bench.training_recipe(shipped["bit_transfer_offline_cpu"]), cpu)
    assert (shape.side, shape.batch_size, shape.num_classes) == (64, 128, 10)
    # bit_fewshot: the HyperRule's 128-pixel crop for CIFAR, BiT's batch of 512.
    shape = bench.step_shape(bench.training_recipe(shipped["bit_fewshot"]), cpu)
    assert (shape.side, shape.batch_size) == (128, 512)
    # bit_fewshot_r50x3: the same crop at the notebook's batch of 32.
    shape = bench.step_shape(bench.training_recipe(shipped["bit_fewshot_r50x3"]), cpu)
    assert (shape.side, shape.batch_size) == (128, 32)
    # A plain recipe: its crop (or 32), its batch, its classes, `auto` resolved to what this machine runs.
    upstream = bench.training_recipe(shipped["bit_upstream_cifar100_cpu"])
    assert upstream == load_recipe(shipped["bit_upstream_cifar100_cpu"])
    shape = bench.step_shape(upstream, cpu)
    assert (shape.side, shape.batch_size, shape.num_classes) == (64, 256, 100)
    assert upstream.train.precision == "auto" and shape.precision in ("fp32", "bf16")


def test_the_table_has_a_row_per_recipe_with_a_share_of_the_peak_of_its_precision(monkeypatch, capsys):
    bench = load_bench_script("recipe_speed")
    # fp32 and bf16 peaks far apart, so each row shows which one it was divided by.
    monkeypatch.setattr(bench, "peak_gflops", lambda device: {"fp32_matmul": 1.0, "fp32_conv": 1e6,
                                                              "bf16_matmul": 1.0, "bf16_conv": 1e9})
    monkeypatch.setattr(sys, "argv", ["recipe_speed.py", "--recipes", "quick", "fdu/dessilbi_cpu", "--steps", "1",
                                      "--warmup", "0"])
    bench.main()
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    header, *body = rows
    assert [cell.strip() for cell in header][:2] == ["recipe", "model"]
    cells = {row[0].strip(): [cell.strip() for cell in row] for row in body}
    assert cells["quick"][1:5] == ["airbench94", "32", "512", "bf16"]  # fast94's explicit bf16
    assert cells["fdu/dessilbi_cpu"][1:5] == ["vgg_a_bn", "32", "128", "fp32"]  # the recipe asks for fp32
    for row in cells.values():
        assert float(row[5].replace(",", "")) > 0 and float(row[6]) > 0
        # GFLOP/s over a peak of 1e6 (fp32) or 1e9 (bf16): a tiny share, rounded to 0%.
        assert row[7] == "0%"


def test_an_unknown_recipe_name_is_refused_before_anything_is_measured(monkeypatch):
    bench = load_bench_script("recipe_speed")
    monkeypatch.setattr(bench, "peak_gflops", lambda device: pytest.fail("measured before checking the names"))
    monkeypatch.setattr(sys, "argv", ["recipe_speed.py", "--recipes", "quick", "fast95"])
    with pytest.raises(SystemExit, match=r"unknown recipe\(s\) fast95; `cifarlab recipes` lists them"):
        bench.main()


def test_accumulate_splits_every_recipes_step_into_micro_batches_and_says_so(monkeypatch, capsys):
    bench = load_bench_script("recipe_speed")
    monkeypatch.setattr(bench, "peak_gflops", lambda device: {"fp32_matmul": 1.0, "fp32_conv": 1.0,
                                                              "bf16_matmul": 1.0, "bf16_conv": 1.0})
    seen = []
    real = bench.recipe_speed
    monkeypatch.setattr(bench, "recipe_speed", lambda recipe, steps, warmup: seen.append(recipe) or real(recipe, steps, warmup))
    monkeypatch.setattr(sys, "argv", ["recipe_speed.py", "--recipes", "quick", "--accumulate", "4", "--steps", "1",
                                      "--warmup", "0"])
    bench.main()
    assert [recipe.train.accumulate for recipe in seen] == [4]
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| quick |"))
    assert row.split("|")[4].strip() == "512 (4 x 128)"
    monkeypatch.setattr(sys, "argv", ["recipe_speed.py", "--recipes", "quick", "--accumulate", "3"])
    with pytest.raises(SystemExit, match="quick: train.batch_size=512 does not split into train.accumulate=3 equal micro-batches"):
        bench.main()
