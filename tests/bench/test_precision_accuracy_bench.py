"""bench/precision_accuracy.py trains each recipe in fp32 and bf16 from the same seed and tabulates both."""

import json

import pytest
import yaml

from tests.bench import load_bench_script
from tests.conftest import tiny_recipe_data


def load_bench():
    return load_bench_script("precision_accuracy")


@pytest.mark.slow
def test_both_precisions_train_from_one_seed_and_the_table_gives_their_difference(tmp_path, cifar10, monkeypatch):
    bench = load_bench()
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_data(train={"steps": 3}, eval={"test": True, "batch_size": 500})))
    results = tmp_path / "results.jsonl"
    monkeypatch.setattr("sys.argv", ["precision_accuracy.py", "--recipes", str(recipe), "--seeds", "0", "1",
                                     "--overrides", "--out-dir", str(tmp_path / "runs"), "--results", str(results)])
    bench.main()
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(row["precision"], row["seed"]) for row in rows] == [("fp32", 0), ("bf16", 0), ("fp32", 1), ("bf16", 1)]
    recorded = {(row["precision"], row["seed"]): yaml.safe_load((tmp_path / "runs" / f"tiny_{row['precision']}_seed{row['seed']}"
                                                                  / "recipe.yaml").read_text()) for row in rows}
    assert {r["train"]["precision"] for r in recorded.values()} == {"fp32", "bf16"}
    assert all(0.0 <= row["top1"] <= 1.0 and row["train_s"] > 0 for row in rows)
    table = bench.summary_table(rows)
    fp32 = sum(100 * r["top1"] for r in rows if r["precision"] == "fp32") / 2
    bf16 = sum(100 * r["top1"] for r in rows if r["precision"] == "bf16") / 2
    assert f"{bf16 - fp32:+.2f} points" in table and "| fp32 | 2 |" in table


def test_a_run_stopped_by_a_signal_ends_the_benchmark_with_its_code(tmp_path, cifar10, monkeypatch, capsys):
    import pytest

    from cifarlab.runner import run as run_module

    bench = load_bench()
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_data(train={"steps": 3})))
    results = tmp_path / "results.jsonl"
    # The run stops after its first step, as a Ctrl-C or SIGTERM stops it: no test result to tabulate.
    monkeypatch.setattr(bench, "run_recipe", lambda recipe_to_run: run_module.run_recipe(recipe_to_run, stop_after=1))
    monkeypatch.setattr("sys.argv", ["precision_accuracy.py", "--recipes", str(recipe), "--seeds", "0",
                                     "--overrides", "--out-dir", str(tmp_path / "runs"), "--results", str(results)])
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 130 and "stopped by a signal during" in capsys.readouterr().err
    assert not results.exists() or not results.read_text().strip()
