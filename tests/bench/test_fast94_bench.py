"""bench/fast94.py writes airbench's data files from cifarlab's copy of CIFAR-10, in airbench's own format."""

import pytest
import torch

from cifarlab.data import Dataset
from tests.bench import load_bench_script


def load_bench():
    return load_bench_script("fast94")


def test_airbench_data_holds_the_same_images_as_nhwc_uint8_and_is_written_once(tmp_path, monkeypatch):
    bench = load_bench()
    g = torch.Generator().manual_seed(0)
    train = torch.randint(0, 256, (12, 3, 32, 32), dtype=torch.uint8, generator=g)
    test = torch.randint(0, 256, (5, 3, 32, 32), dtype=torch.uint8, generator=g)
    ds = Dataset("cifar10", ["a", "b", "c"], train, torch.arange(12) % 3, test, torch.arange(5) % 3)
    calls = []
    monkeypatch.setattr(bench, "load_dataset", lambda name: calls.append(name) or ds)
    assert bench.airbench_data(tmp_path) == tmp_path
    for split, images, labels in (("train", train, ds.train_labels), ("test", test, ds.test_labels)):
        saved = torch.load(tmp_path / "cifar10" / f"{split}.pt")
        assert saved["images"].dtype == torch.uint8 and saved["images"].shape == (len(images), 32, 32, 3)
        # airbench turns them back with .permute(0, 3, 1, 2): that must give the original images.
        assert torch.equal(saved["images"].permute(0, 3, 1, 2), images)
        assert torch.equal(saved["labels"], labels) and saved["classes"] == ["a", "b", "c"]
    bench.airbench_data(tmp_path)
    assert calls == ["cifar10"]  # the second call finds the files and decodes nothing
    assert not [p for p in (tmp_path / "cifar10").iterdir() if p.name.startswith(".")]  # no temporary files left


@pytest.mark.slow
def test_a_baseline_recipe_trains_in_the_same_invocation_and_both_get_a_share_of_the_peak(tmp_path, cifar10, monkeypatch,
                                                                                            capsys):
    import json
    import sys

    import yaml

    from tests.conftest import tiny_recipe_data

    bench = load_bench()
    import cpu_peak  # on sys.path once the bench is loaded

    # Measured before the runs and after them; the second, disturbed measurement must not set the shares.
    measurements = iter([1000.0, 600.0])
    monkeypatch.setattr(cpu_peak, "peak_gflops", lambda device: {"bf16_conv": next(measurements)})
    recipes = {}
    for name, steps in (("new", 4), ("old", 8)):
        recipes[name] = tmp_path / f"{name}.yaml"
        recipes[name].write_text(yaml.safe_dump(tiny_recipe_data(name=name, train={"steps": steps})))
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["fast94.py", "--recipe", str(recipes["new"]), "train.label_smoothing=0.1",
                                      "--seeds", "0", "1", "--baseline", str(recipes["old"]), "--baseline-seeds", "0"])
    bench.main()
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in (tmp_path / "results" / "fast94_cpu.jsonl").read_text().splitlines()]
    assert [(r["who"], r["seed"], r["steps"]) for r in rows] == [("cifarlab", 0, 4), ("cifarlab", 1, 4), ("baseline", 0, 8)]
    # A row names the overrides it ran with, so a pilot is never mistaken for the recipe as shipped.
    assert all(r["overrides"] == ["train.label_smoothing=0.1"] for r in rows)
    assert f"time ratio {recipes['new']} / {recipes['old']}" in out and "mean top-1 difference" in out
    assert "bf16 conv peak measured before the runs 1000 GFLOP/s, after them 600; the shares below use the higher" in out
    shares = [line for line in out.splitlines() if "of the bf16 conv peak 1000" in line]
    assert [line.split()[0] for line in shares] == ["cifarlab", "baseline"]


def test_flops_per_image_average_the_run_over_smaller_early_batches_and_a_frozen_whitening_bias(tmp_path):
    import yaml

    bench = load_bench()
    recipe = tmp_path / "r.yaml"

    def per_image(**sections) -> float:
        recipe.write_text(yaml.safe_dump({"model": {"name": "airbench94", "init": "airbench", **sections.pop("model", {})},
                                          "train": {"epochs": 8}, **sections}))
        return bench.training_flops_per_image(str(recipe), [])

    full = per_image()
    small = per_image(augment={"progressive_size": 24, "progressive_epochs": 4})
    frozen = per_image(model={"whiten_bias_epochs": 0.001})
    # 24x24 costs about (23/31)^2 of a 32x32 image through this network: half the run at ~0.55.
    assert 0.70 < small / full < 0.82
    # A frozen whitening bias stops backpropagation at the first 3x3 conv: a few percent less.
    assert 0.90 < frozen / full < 0.99


def test_share_of_peak_gives_the_rate_its_share_and_the_training_time_at_the_full_peak():
    bench = load_bench()
    # 10 steps x 100 images x 1 GFLOP = 1,000 GFLOP: in 10 s that is 100 GFLOP/s, half of a 200 GFLOP/s peak,
    # and 5 s at the full peak. The second run is twice as slow; the medians are taken over both.
    rows = [{"who": "cifarlab", "steps": 10, "batch_size": 100, "train_s": 10.0},
            {"who": "cifarlab", "steps": 10, "batch_size": 100, "train_s": 30.0},
            {"who": "baseline", "steps": 99, "batch_size": 100, "train_s": 1.0}]
    line = bench.share_of_peak(rows, "cifarlab", 1e9, 200.0)
    assert "achieved 67 GFLOP/s" in line and "33% of the bf16 conv peak 200" in line
    assert line.endswith("its training would take 5 s")
    assert bench.share_of_peak(rows, "airbench", 1e9, 200.0) == "airbench: no timed runs"


@pytest.mark.slow
def test_a_run_stopped_by_a_signal_ends_the_benchmark_with_its_code_and_keeps_the_runs_before_it(
        tmp_path, cifar10, monkeypatch, capsys):
    import json
    import sys

    import pytest
    import yaml

    from cifarlab.runner import run as run_module
    from tests.conftest import tiny_recipe_data

    bench = load_bench()
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_recipe_data(name="tiny", train={"steps": 4})))
    calls = []

    def second_run_stopped(recipe_to_run):
        # The second run stops after 2 of its 4 steps, as a Ctrl-C or SIGTERM stops it.
        calls.append(recipe_to_run.name)
        return run_module.run_recipe(recipe_to_run, stop_after=2 if len(calls) == 2 else None)

    monkeypatch.setattr(bench, "run_recipe", second_run_stopped)
    monkeypatch.setattr(bench, "RESULTS", tmp_path / "results")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["fast94.py", "--recipe", str(recipe), "--seeds", "0", "1", "--baseline", "none"])
    with pytest.raises(SystemExit) as stop:
        bench.main()
    assert stop.value.code == 130
    assert "stopped by a signal during" in capsys.readouterr().err
    rows = [json.loads(line) for line in (tmp_path / "results" / "fast94_cpu.jsonl").read_text().splitlines()]
    assert [(row["seed"], row["steps"]) for row in rows] == [(0, 4)]  # the finished run is logged, the stopped one not
