import csv
import json

import pytest
from PIL import Image

import cifarlab.transfer.fewshot as fewshot
from cifarlab.cli import main
from cifarlab.config import recipe_from_dict
from cifarlab.data import load_dataset
from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.models.bit_weights import save_npz
from cifarlab.transfer.figure6 import paper_value
from tests.experiments.conftest import TINY_BIT
from tests.experiments.conftest import sweep_recipe as _sweep_recipe


@pytest.mark.slow
def test_tiny_sweep_writes_results_table_and_figure_and_skips_finished_runs(tmp_path, small_cifar_folder, monkeypatch):
    upstream = tmp_path / "upstream.npz"
    save_npz(create("bit_resnetv2", num_classes=100, **TINY_BIT), upstream)
    out = fewshot.run_sweep(_sweep_recipe(small_cifar_folder, [str(upstream), "scratch"]), tmp_path / "sweep")

    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == 8
    assert {(r["weights"], r["shots"], r["seed"]) for r in rows} == {
        (w, s, d) for w in ("upstream", "scratch") for s in ("1", "2") for d in ("0", "1")}
    assert all(0 <= float(r["top1"]) <= 100 and r["steps"] == "5" for r in rows)
    summary = (out / "summary.md").read_text()
    assert "| upstream | 1 | 2 |" in summary and "| scratch | 2 | 2 |" in summary
    assert "| mean top-1 (%) | sd | median | min | max |" in summary
    assert Image.open(out / "figure6.png").size[0] > 300
    _check_summary_csv_against_the_runs(out, rows)

    # Each run saved the subset it trained on: k per class, and the seed really changes it.
    def subset(run):
        return json.loads((out / "runs" / run / "indices.json").read_text())["train"]

    a, b = subset("upstream_2shot_seed0"), subset("upstream_2shot_seed1")
    assert len(a) == 20 and len(b) == 20 and a != b
    assert subset("scratch_2shot_seed0") == a  # same seed, same subset, whatever the weights
    labels = load_dataset(small_cifar_folder).train_labels[a].tolist()
    assert sorted(labels) == sorted(list(range(10)) * 2)

    # A re-run trains nothing: every run already has its test evaluation.
    def refuse(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(fewshot, "run_recipe", refuse)
    fewshot.run_sweep(_sweep_recipe(small_cifar_folder, [str(upstream), "scratch"]), tmp_path / "sweep")
    again = list(csv.DictReader(open(out / "results.csv")))
    assert [(r["run"], r["top1"], r["wall_s"]) for r in again] == [(r["run"], r["top1"], r["wall_s"]) for r in rows]
    assert all(float(r["wall_s"]) > 0 for r in again)  # a skipped run keeps the time it took


def _check_summary_csv_against_the_runs(out, rows):
    """summary.csv holds mean, sd, median, min and max of each setting's runs in results.csv."""
    import statistics

    summary = {(r["weights"], r["shots"]): r for r in csv.DictReader(open(out / "summary.csv"))}
    assert len(summary) == 4
    for (weights, shots), entry in summary.items():
        top1 = [float(r["top1"]) for r in rows if (r["weights"], r["shots"]) == (weights, shots)]
        assert int(entry["runs"]) == len(top1) == 2
        assert float(entry["mean"]) == pytest.approx(statistics.mean(top1), abs=0.006)
        assert float(entry["sd"]) == pytest.approx(statistics.stdev(top1), abs=0.006)
        assert float(entry["median"]) == pytest.approx(statistics.median(top1), abs=0.006)
        assert (float(entry["min"]), float(entry["max"])) == (min(top1), max(top1))
        assert entry["paper"] == ""  # no Figure 6 value for these weights


def test_hyperrule_fills_the_run_recipe():
    base = recipe_from_dict({"train": {"batch_size": 128}}, source="test")
    recipe = fewshot.run_recipe_for(base, "BiT-M-R50x1", shots=5, seed=3, num_classes=10, image_size=32)
    assert recipe.model.name == "bit_r50x1" and recipe.model.weights == "BiT-M-R50x1"
    assert (recipe.augment.resize, recipe.augment.crop, recipe.augment.mixup_alpha) == (160, 128, 0.0)
    assert recipe.optim.lr == 0.003 and recipe.optim.weight_decay == 0  # the published rule: no batch scaling
    linear = recipe_from_dict({"train": {"batch_size": 128}, "fewshot": {"lr_scaling": "linear"}}, source="test")
    assert fewshot.run_recipe_for(linear, "BiT-M-R50x1", 5, 3, 10, 32).optim.lr == pytest.approx(0.003 * 128 / 512)
    assert recipe.optim.momentum == 0.9 and recipe.schedule.boundaries == [100, 200, 300, 400, 500]
    assert recipe.train.steps == 500 and recipe.data.examples_per_class == 5 and recipe.data.subset_seed == 3
    assert recipe.data.val_size == 0


def test_unknown_weights_are_a_clear_error():
    with pytest.raises(CifarlabError, match="neither an official name"):
        fewshot.run_recipe_for(_sweep_recipe("cifar10", ["nope"]), "nope", 1, 0, 10, 32)


def test_paper_values_come_from_figure6():
    assert paper_value("BiT-M-R50x1", 5) == 83.0 and paper_value("BiT-S-R152x4", 1) == 42.0
    assert paper_value("upstream", 5) is None


def test_fewshot_command_line_overrides_reach_the_sweep(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_sweep(recipe, out):
        seen["recipe"], seen["out"] = recipe, out
        out.mkdir(parents=True)
        (out / "summary.md").write_text("table\n")
        return out

    monkeypatch.setattr(fewshot, "run_sweep", fake_sweep)
    code = main(["fewshot", "--weights", "BiT-S-R50x1", "scratch", "--shots", "1", "10", "--seeds", "3",
                 "--dataset", "cifar100", "--out", str(tmp_path / "s"), "train.batch_size=128"])
    assert code == 0
    fs = seen["recipe"].fewshot
    assert (fs.weights, fs.shots, fs.seeds) == (["BiT-S-R50x1", "scratch"], [1, 10], 3)
    assert seen["recipe"].data.dataset == "cifar100" and seen["recipe"].train.batch_size == 128


@pytest.mark.parametrize("tail", [
    ["--weights", "scratch", "train.batch_size=64", "--shots", "2", "5", "eval.batch_size=50"],
    ["--shots", "2", "5", "train.batch_size=64", "--weights", "scratch", "eval.batch_size=50"],
])
def test_overrides_after_the_list_options_are_overrides_not_list_items(tmp_path, monkeypatch, tail):
    seen = {}
    monkeypatch.setattr(fewshot, "run_sweep", lambda recipe, out: seen.update(recipe=recipe) or _fake_summary(out))
    assert main(["fewshot", "--out", str(tmp_path / "s"), *tail]) == 0
    r = seen["recipe"]
    assert (r.fewshot.weights, r.fewshot.shots) == (["scratch"], [2, 5])
    assert (r.train.batch_size, r.eval.batch_size) == (64, 50)


def test_shots_that_are_not_whole_numbers_are_refused(tmp_path, capsys):
    assert main(["fewshot", "--out", str(tmp_path / "s"), "--shots", "1", "five"]) == 2
    assert "--shots takes whole numbers" in capsys.readouterr().err and not (tmp_path / "s").exists()


def _fake_summary(out):
    out.mkdir(parents=True)
    (out / "summary.md").write_text("table\n")
    return out


@pytest.mark.slow
def test_an_interrupted_run_resumes_and_its_wall_time_adds_up(tmp_path, small_cifar_folder, monkeypatch):
    real = fewshot.run_recipe
    calls = []

    def stop_first_run_early(recipe, resume=None, **kwargs):
        calls.append((recipe.name, resume))
        return real(recipe, resume=resume, stop_after=2 if len(calls) == 1 else None)

    monkeypatch.setattr(fewshot, "run_recipe", stop_first_run_early)
    recipe = _sweep_recipe(small_cifar_folder, ["scratch"], shots=[1], seeds=1)
    with pytest.raises(CifarlabError, match="sweep stopped during scratch_1shot_seed0"):
        fewshot.run_sweep(recipe, tmp_path / "sweep")
    run_dir = tmp_path / "sweep" / "runs" / "scratch_1shot_seed0"
    first_part = json.loads((run_dir / fewshot.WALL_FILE).read_text())["wall_s"]
    assert first_part > 0 and (run_dir / "last.pt").is_file()

    out = fewshot.run_sweep(recipe, tmp_path / "sweep")
    assert calls[1] == ("scratch_1shot_seed0", run_dir)  # the second call resumed the same run folder
    (row,) = csv.DictReader(open(out / "results.csv"))
    assert float(row["wall_s"]) > first_part  # both parts counted


def test_a_cifar100_sweep_is_titled_cifar100_and_shows_no_cifar10_paper_values(tmp_path):
    from cifarlab.transfer.figure6 import figure6

    rows = [{"weights": "BiT-M-R50x1", "model": "bit_r50x1", "shots": 1, "seed": s, "top1": 30.0 + s, "top5": 60.0,
             "steps": 500, "wall_s": 1.0, "run": f"r{s}"} for s in (0, 1)]
    fewshot.write_results(tmp_path, rows, "cifar100")
    assert "| BiT-M-R50x1 | 1 | 2 | 30.50 | 0.71 | 30.50 | 30.00 | 31.00 | - |" in (tmp_path / "summary.md").read_text()
    summary = fewshot.summarise(rows, "cifar100")
    (axes,) = figure6(summary, rows, "cifar100").axes
    assert axes.get_title() == "CIFAR-100, 1-shot"
    legend = [t.get_text() for t in axes.get_legend().get_texts()]
    assert "BiT paper (Fig. 6)" not in legend and {"cifarlab mean", "cifarlab median"} <= set(legend)
    # The same runs on CIFAR-10 are shown beside the paper's CIFAR-10 value.
    (axes,) = figure6(fewshot.summarise(rows, "cifar10"), rows, "cifar10").axes
    assert axes.get_title() == "CIFAR-10, 1-shot"
    assert "BiT paper (Fig. 6)" in [t.get_text() for t in axes.get_legend().get_texts()]
