import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

import cifarlab.runner.run as run_module
from cifarlab.cli import main
from cifarlab.errors import CifarlabError
from cifarlab.models import names as model_names
from cifarlab.runs import WALL_FILE
from cifarlab.sweeps.grid import grid_points, parse_axis, run_names
from cifarlab.sweeps.grid_sweep import sweep_spec
from cifarlab.sweeps.sweep import run_points
from tests.experiments.conftest import GRID, RUN_NAMES

REPO = Path(__file__).resolve().parents[2]
TIMES = ("train_time_s", "wall_s", "run")


def _rows(path):
    return list(csv.DictReader(open(path)))


def _without(rows, columns):
    return [{k: v for k, v in row.items() if k not in columns} for row in rows]


def test_a_sweep_writes_one_run_per_grid_point_and_its_tables(zoo_sweep):
    assert sorted(p.name for p in (zoo_sweep / "runs").iterdir()) == sorted(RUN_NAMES)
    rows = _rows(zoo_sweep / "results.csv")
    assert [r["run"] for r in rows] == [f"runs/{n}" for n in RUN_NAMES]
    assert [(r["model.name"], r["seed"]) for r in rows] == [("lenet", "0"), ("lenet", "1"), ("convnet5", "0"), ("convnet5", "1")]
    for row in rows:
        test = json.loads((zoo_sweep / row["run"] / "eval_test.json").read_text())
        assert float(row["test_top1"]) == pytest.approx(100 * test["top1"], abs=0.01)
        assert float(row["params"]) > 1000 and float(row["train_time_s"]) > 0 and float(row["wall_s"]) > 0
        assert 0 <= float(row["val_best_top1"]) <= 100
    assert rows[0]["test_top1"] != rows[1]["test_top1"] or rows[0]["test_loss"] != rows[1]["test_loss"]  # seeds differ
    summary = _rows(zoo_sweep / "summary.csv")
    assert [(s["model.name"], s["runs"]) for s in summary] == [("lenet", "2"), ("convnet5", "2")]
    lenet_top1 = [float(r["test_top1"]) for r in rows[:2]]
    assert float(summary[0]["test_top1_mean"]) == pytest.approx(sum(lenet_top1) / 2, abs=0.01)
    assert "±" in (zoo_sweep / "summary.md").read_text()


@pytest.mark.slow
def test_a_rerun_finishes_only_what_is_missing_and_leaves_finished_runs_untouched(zoo_sweep, recipe_file, tmp_path, monkeypatch,
                                                                                   tiny_cache):
    out = tmp_path / "zoo"
    shutil.copytree(zoo_sweep, out)
    runs = out / "runs"
    # lenet_seed1 stopped after its checkpoint: no scores yet, last.pt kept, its first part's wall time kept.
    stopped = runs / "lenet_seed1"
    for path in stopped.glob("eval_*.json"):
        path.unlink()
    first_part = json.loads((stopped / WALL_FILE).read_text())["wall_s"]
    (stopped / WALL_FILE).write_text(json.dumps({"wall_s": first_part, "finished": False}))
    # convnet5_seed0 died before its first checkpoint: only its recipe was written.
    dead = runs / "convnet5_seed0"
    for path in dead.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        elif path.name != "recipe.yaml":
            path.unlink()
    untouched = {p: p.stat().st_mtime_ns for name in ("lenet_seed0", "convnet5_seed1") for p in (runs / name).rglob("*")}

    calls = []
    real = run_module.run_recipe

    def recording(recipe, resume=None, **options):
        calls.append((recipe.name, resume))
        return real(recipe, resume=resume, **options)

    monkeypatch.setattr(run_module, "run_recipe", recording)
    assert main(["sweep", str(recipe_file), "--grid", *GRID, "--out", str(out)]) == 0

    assert calls == [("lenet_seed1", stopped), ("convnet5_seed0", None)]
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched
    assert (stopped / "eval_test.json").is_file() and (dead / "eval_test.json").is_file()
    rows = _rows(out / "results.csv")
    assert [r["run"] for r in rows] == [f"runs/{n}" for n in RUN_NAMES]
    assert float(rows[1]["wall_s"]) > first_part  # both parts of the stopped run count
    before = _rows(zoo_sweep / "results.csv")
    # The resumed run only needed its evaluation: same scores as when it first finished.
    assert _without(rows, TIMES)[:2] == _without(before, TIMES)[:2]


@pytest.mark.slow
def test_two_local_workers_give_the_same_results_as_one(zoo_sweep, recipe_file, tmp_path, tiny_cache):
    out = tmp_path / "parallel"
    assert main(["sweep", str(recipe_file), "--grid", "model.name=lenet,convnet5", "seed=0", "--jobs", "2",
                 "--out", str(out)]) == 0
    rows = _rows(out / "results.csv")
    assert [r["run"] for r in rows] == ["runs/lenet", "runs/convnet5"]
    one_worker = [r for r in _rows(zoo_sweep / "results.csv") if r["seed"] == "0"]
    # Each worker trains on its share of the cores; another thread count sums floats in another
    # order, so losses may differ in the last digits while everything else agrees.
    close = ("test_loss", "test_ece")
    assert _without(rows, TIMES + close) == _without(one_worker, TIMES + close)
    for ours, theirs in zip(rows, one_worker):
        for key in close:
            assert float(ours[key]) == pytest.approx(float(theirs[key]), abs=2e-3)
    assert "lenet" in (out / "logs" / "lenet.log").read_text()  # progress went to a log, not the shared terminal


@pytest.mark.slow
def test_slurm_launcher_runs_through_submitit(zoo_sweep, recipe_file, tmp_path, tiny_cache):
    pytest.importorskip("submitit")
    out = tmp_path / "slurm"
    assert main(["sweep", str(recipe_file), "--launcher", "slurm", "--slurm-cluster", "local", "--slurm-cpus", "1",
                 "--out", str(out), "seed=0"]) == 0  # nothing varies: one run, named after the recipe
    (row,) = _rows(out / "results.csv")
    (reference,) = [r for r in _rows(zoo_sweep / "results.csv") if r["run"] == "runs/lenet_seed0"]
    assert row["test_top1"] == reference["test_top1"] and row["test_loss"] == reference["test_loss"]
    assert any((out / "slurm").rglob("*_log.out"))  # submitit's own job logs


def test_slurm_without_submitit_names_the_extra(recipe_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(__import__("sys").modules, "submitit", None)
    code = main(["sweep", str(recipe_file), "--grid", "seed=0,1", "--launcher", "slurm", "--out", str(tmp_path / "s")])
    assert code == 2 and "pip install 'cifarlab[slurm]'" in capsys.readouterr().err


def test_a_failed_run_does_not_stop_the_others(recipe_file, tmp_path):
    points = grid_points(recipe_file, {"seed": ["0", "1"]})

    class Finished:
        status = "finished"

    def runner(recipe, resume=None):
        if recipe.seed == 0:
            raise CifarlabError("no such thing")
        (tmp_path / "runs" / recipe.name).mkdir(parents=True)
        return Finished()

    with pytest.raises(CifarlabError, match=r"1 of 2 sweep runs failed \(seed0: no such thing\)"):
        run_points(points, tmp_path / "runs", runner=runner)
    assert json.loads((tmp_path / "runs" / "seed1" / WALL_FILE).read_text())["finished"] is True


def test_grid_axes_and_run_names():
    assert parse_axis("optim.betas=[0.9, 0.99],[0.8,0.9]") == ("optim.betas", ["[0.9, 0.99]", "[0.8,0.9]"])
    assert run_names([{"model.name": "vgg11_bn", "optim.lr": "0.1"}]) == ["vgg11_bn_lr0.1"]
    # Values alone would collide (a_b_c twice): the keys join the names.
    assert run_names([{"model.name": "a_b", "data.dataset": "c"}, {"model.name": "a", "data.dataset": "b_c"}]) == [
        "namea_b_datasetc", "namea_datasetb_c"]
    assert run_names([{"data.root": "a/b"}, {"data.root": "a b"}]) == ["roota-b_0", "roota-b_1"]
    with pytest.raises(CifarlabError, match="key=value1,value2"):
        parse_axis("model.name")


def test_a_mistyped_grid_key_fails_before_any_run(recipe_file, tmp_path, capsys):
    assert main(["sweep", str(recipe_file), "--grid", "optim.lrr=0.1,0.2", "--out", str(tmp_path / "s")]) == 2
    assert "lrr" in capsys.readouterr().err and not (tmp_path / "s").exists()
    with pytest.raises(CifarlabError, match="drop 'name' from the grid"):
        grid_points(recipe_file, {"name": ["a", "b"]})


def test_the_fdu_zoo_sweep_file_resolves_to_the_fdu_table():
    spec = sweep_spec(REPO / "configs" / "sweeps" / "fdu_zoo.yaml")
    points = grid_points(spec.recipe, spec.grid, spec.overrides)
    models = list(dict.fromkeys(p.recipe.model.name for p in points))
    assert models == ["resnet18", "preact_resnet18", "wrn_28_10", "resnext29_32x4d", "densenet121", "dpn26", "dla"]
    assert set(models) <= set(model_names()) and len(points) == 21
    fdu_recipe = yaml.safe_load((REPO / "configs" / "fdu" / "base.yaml").read_text())
    assert all(p.recipe.train.epochs == fdu_recipe["train"]["epochs"] and p.recipe.schedule.name == "plateau" for p in points)
    assert set(spec.reference["values"]) == set(models)


FDU_ABLATION = ["resnet18", "resnet50", "resnext29_2x32d", "resnext29_2x64d", "resnext29_8x64d", "resnext50_2x40d",
                "resnext50_8x14d", "resnext50_32x4d"]


@pytest.mark.parametrize("sweep_file, models", [("fdu_ablation.yaml", FDU_ABLATION), ("fdu_final.yaml", ["wrn_28_10"])])
def test_the_fdu_ablation_and_final_sweeps_resolve_to_their_tables(sweep_file, models):
    spec = sweep_spec(REPO / "configs" / "sweeps" / sweep_file)
    points = grid_points(spec.recipe, spec.grid, spec.overrides)
    assert list(dict.fromkeys(p.recipe.model.name for p in points)) == models and len(points) == 3 * len(models)
    assert set(models) <= set(model_names()) and set(spec.reference["values"]) == set(models)
    assert all(p.recipe.train.epochs == 200 and p.recipe.optim.lr == 0.1 for p in points)


def test_the_fdu_final_recipe_differs_from_the_shared_one_only_where_it_says():
    from cifarlab.config.loader import load_recipe
    shared, final = load_recipe(REPO / "configs" / "fdu" / "wrn_28_10.yaml"), load_recipe(REPO / "configs" / "fdu" / "wrn_28_10_final.yaml")
    assert final.augment.cutout == 16 and final.model.options["block_dropout"] == 0.3 and final.optim.nesterov
    assert (final.schedule.name, final.schedule.milestones, final.schedule.gamma) == ("multistep", [60, 120, 160], 0.2)
    assert (shared.augment.cutout, shared.schedule.name, shared.optim.nesterov) == (0, "plateau", False)
    assert final.data == shared.data and final.train.epochs == shared.train.epochs


def test_a_sweep_refuses_to_skip_runs_trained_with_another_recipe(zoo_sweep, recipe_file, tmp_path, capsys):
    out = tmp_path / "zoo"
    shutil.copytree(zoo_sweep, out)
    before = (out / "results.csv").read_text()
    assert main(["sweep", str(recipe_file), "--grid", *GRID, "--out", str(out), "optim.lr=0.2"]) == 2
    err = capsys.readouterr().err
    assert "4 of 4 sweep runs failed" in err and "differs in optim.lr" in err and "another --out" in err
    assert (out / "results.csv").read_text() == before


@pytest.mark.slow
def test_sweep_takes_shipped_recipe_and_sweep_names_from_any_folder(tmp_path, monkeypatch, capsys, cifar10):
    from cifarlab.config.shipped import RECIPES_DIR

    monkeypatch.chdir(tmp_path)  # no configs/ here: the names resolve to the shipped files
    assert sweep_spec("sweeps/fdu_zoo").recipe.resolve() == (RECIPES_DIR / "fdu" / "base.yaml").resolve()
    assert sweep_spec("configs/sweeps/fdu_zoo.yaml").grid == sweep_spec("sweeps/fdu_zoo").grid
    assert "model.name" in sweep_spec("sweeps/fdu_zoo").grid
    # The README's `cifarlab sweep quick --grid ...`, cut to two tiny runs.
    code = main(["sweep", "quick", "--grid", "seed=0,1", "train.epochs=1", "train.batch_size=100", "data.train_limit=300", "data.val_size=100",
                 "eval.tta=none", "train.device=cpu", "model.options.width_multiplier=0.25"])
    assert code == 0
    rows = _rows(tmp_path / "sweeps" / "quick" / "results.csv")
    assert [r["seed"] for r in rows] == ["0", "1"] and all(0 <= float(r["test_top1"]) <= 100 for r in rows)
    assert main(["sweep", "quikc", "--grid", "seed=0,1"]) == 2
    assert "closest: quick" in capsys.readouterr().err


def test_sweep_files_name_a_shipped_recipe_and_their_mistakes_are_one_message(tmp_path):
    (tmp_path / "shipped.yaml").write_text("recipe: fdu/base\ngrid: {seed: [0, 1]}\n")
    assert sweep_spec(tmp_path / "shipped.yaml").recipe.name == "base.yaml"
    mistakes = {
        "grid: {seed: []}": "grid axis seed lists no values",
        "recipe: nosuch.yaml\ngrid: {seed: [0]}": r"recipe 'nosuch.yaml' is neither a file .* nor a shipped recipe",
    }
    for text, message in mistakes.items():
        (tmp_path / "s.yaml").write_text(f"recipe: quick\n{text}\n" if text.startswith("grid") else text + "\n")
        with pytest.raises(CifarlabError, match=message):
            sweep_spec(tmp_path / "s.yaml")


def test_a_cluster_jobs_user_error_is_read_from_its_traceback_text_busy_folders_included():
    from cifarlab.sweeps.launchers import _user_error_message

    head = "submitit.core.utils.FailedJobError: Job (task=0) failed during processing with trace:\n" \
           "----------------------\nTraceback (most recent call last):\n  File \"x.py\", line 1, in <module>\n"
    assert _user_error_message(head + "cifarlab.errors.CifarlabError: optim.lrr is not a key\n") == \
        "optim.lrr is not a key"
    busy = "runs/seed0 is in use by another cifarlab process (pid 12 on node3); wait for it to end"
    assert _user_error_message(head + f"cifarlab.runs.lock.RunFolderBusy: {busy}\n") == busy
    assert _user_error_message(head + "ValueError: a bug keeps its traceback\n") is None
