"""Tune files: the shipped ones load, and every mistake stops `cifarlab tune` before any trial with one line."""

from __future__ import annotations

import sys

import pytest

from cifarlab.cli import main
from cifarlab.config.shipped import RECIPES_DIR, shipped_recipes
from cifarlab.errors import CifarlabError
from cifarlab.tuning.space import distributions, grid_values, parse_space
from cifarlab.tuning.tune_file import read_tune_file
from tests.tuning.conftest import write_tune_file

SHIPPED = sorted(p.stem for p in (RECIPES_DIR / "tunes").glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_tune_file_loads_and_validates(name):
    spec = read_tune_file(f"tunes/{name}")
    assert spec.metric == "val.top1" and spec.trials >= (6 if name == "tiny" else 10) and len(spec.space) >= 2
    assert set(distributions(spec.space)) == {dim.key for dim in spec.space}


def test_the_shipped_tune_files_name_the_keys_the_brief_asks_for():
    keys = {name: {dim.key for dim in read_tune_file(f"tunes/{name}").space} for name in SHIPPED}
    assert keys == {"era_lr_wd": {"optim.lr", "optim.weight_decay"},
                    "fast94": {"optim.lr", "train.label_smoothing", "train.epochs"},
                    "dl4ds_finetune": {"optim.lr", "schedule.warmup_epochs", "model.options.head_dropout"},
                    "tiny": {"optim.lr", "train.label_smoothing"}}  # the first study of the tuning guide
    assert not any(name.startswith("tunes/") for name in shipped_recipes())  # tune files are not recipes


BAD = {
    "unknown key": ({"space": {"optim.lrr": {"low": 0.01, "high": 0.1}}}, "did you mean 'optim.lr'?"),
    "unknown model option": ({"space": {"model.options.widht": [1, 2]}}, "model 'lenet' has no option widht"),
    "empty range": ({"space": {"optim.lr": {"low": 0.1, "high": 0.1}}}, "the range 0.1..0.1 is empty"),
    "reversed range": ({"space": {"optim.lr": {"low": 0.1, "high": 0.01}}}, "the range is reversed"),
    "log range from zero": ({"space": {"optim.lr": {"low": 0.0, "high": 0.1, "log": True}}}, "a log range needs low > 0"),
    "refused choice": ({"space": {"optim.name": ["sgd", "adamm"]}}, "optim.name=adamm"),
    "refused range end": ({"space": {"train.batch_size": {"low": 0, "high": 64}}}, "train.batch_size must be an integer >= 1"),
    "unknown metric": ({"metric": "val.top5"}, "unknown metric 'val.top5'"),
    "test metric": ({"metric": "test.top1"}, "the test split is never a tuning metric"),
    "unknown sampler": ({"sampler": "cmaes"}, "unknown sampler 'cmaes'; use one of tpe, random, grid"),
    "unknown pruner": ({"pruner": "hyperband"}, "unknown pruner 'hyperband'"),
    "bad pruner argument": ({"pruner": {"name": "median", "n_startup": 2}}, "pruner median does not take"),
    "unknown tune key": ({"trails": 5}, "did you mean 'trials'?"),
    "no validation split": ({"overrides": {"data.full_train": True}}, "has no validation split"),
    "grid without steps": ({"sampler": "grid"}, "the grid sampler needs a value list or a stepped range"),
}


@pytest.mark.parametrize("case", BAD, ids=list(BAD))
def test_a_mistake_in_the_tune_file_is_one_error_line_exit_2_and_no_study_folder(case, recipe_file, tmp_path,
                                                                                monkeypatch, capsys):
    changes, message = BAD[case]
    monkeypatch.chdir(tmp_path)
    tune = write_tune_file(tmp_path, recipe_file, **changes)
    assert main(["tune", str(tune)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cifarlab: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not (tmp_path / "tunes").exists()  # the default study folder: tunes/<tune file name>


def test_without_optuna_the_error_says_how_to_install_it(recipe_file, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(["tune", str(write_tune_file(tmp_path, recipe_file)), "--out", str(tmp_path / "s")]) == 2
    assert "pip install 'cifarlab[tune]'" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_ranges_of_integer_keys_sample_integers_and_grids_walk_their_steps():
    space = parse_space({"train.batch_size": {"low": 16, "high": 64, "step": 16}, "optim.lr": {"low": 0.1, "high": 0.3, "step": 0.1},
                         "optim.name": ["sgd", "adam"]}, "test", frozenset({"train.batch_size"}))
    found = distributions(space)
    assert type(found["train.batch_size"]).__name__ == "IntDistribution" and found["optim.lr"].step == 0.1
    assert grid_values(space, "test") == {"train.batch_size": [16, 32, 48, 64], "optim.lr": [0.1, 0.2, 0.3],
                                          "optim.name": ["sgd", "adam"]}
    with pytest.raises(CifarlabError, match="an integer range needs whole numbers"):
        parse_space({"train.batch_size": {"low": 16.5, "high": 64}}, "test", frozenset({"train.batch_size"}))


def test_a_missing_tune_file_lists_the_shipped_ones(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["tune", "tunes/era"]) == 2
    assert "tunes/era_lr_wd" in capsys.readouterr().err
