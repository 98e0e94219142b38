"""Lockstep comparisons: variants start from one set of weights, see the same batches, differ only in the studied key."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml

from cifarlab.cli import main
from cifarlab.config import load_recipe
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.data.prepare import prepare_splits
from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.runs import load_run
from cifarlab.studies.lockstep import (
    Study,
    VariantRun,
    _initial_model,
    fairness,
    read_study,
    recipe_differences,
    tensor_bytes,
    weights_sha256,
)

pytestmark = pytest.mark.slow  # its fixtures train several real runs

TINY = {
    "name": "tiny", "seed": 0,
    "data": {"dataset": "cifar10", "val_size": 100, "train_limit": 200},
    "model": {"name": "lenet"},
    "optim": {"name": "sgd", "lr": 0.05},
    "train": {"epochs": 1, "batch_size": 32, "log_every": 2, "device": "cpu"},
    "log": {"sinks": ["jsonl"]},
}


@pytest.fixture(scope="module")
def loss_study(tmp_path_factory, cifar10):
    """`cifarlab compare` of cross-entropy against MSE on the tiny recipe; tests only read its folder."""
    folder = tmp_path_factory.mktemp("study")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    study = {"recipe": "tiny.yaml", "vary": {"train.loss": ["cross_entropy", "mse"]}}
    (folder / "loss.yaml").write_text(yaml.safe_dump(study))
    out = folder / "out"
    assert main(["compare", str(folder / "loss.yaml"), "--out", str(out)]) == 0
    return folder, out, json.loads((out / "compare.json").read_text())


def _expected_batches_sha256(recipe) -> str:
    """The hash of the batches the recipe's pipeline hands out, computed here without the trainer."""
    splits = prepare_splits(recipe.data, recipe.seed)
    pipeline = BatchPipeline(splits.train_images, splits.train_labels, batch_size=recipe.train.batch_size,
                             num_classes=splits.num_classes, mean=splits.mean, std=splits.std,
                             augment=recipe.augment, seed=recipe.seed)
    digest = hashlib.sha256()
    for batch in pipeline.epoch(0):
        for tensor in (batch.inputs, batch.targets, batch.labels):
            digest.update(f"{tuple(tensor.shape)}:{tensor.dtype};".encode())
            digest.update(tensor_bytes(tensor))
    return digest.hexdigest()


@pytest.mark.slow
def test_variants_start_from_identical_weights_and_see_identical_batches(loss_study):
    _, out, record = loss_study
    runs = record["runs"]
    assert [(r["variant"], r["seed"]) for r in runs] == [("cross_entropy", 0), ("mse", 0)]
    assert record["fairness"] == [{"seed": 0, "same_initial_weights": True, "same_batches": True,
                                   "only_studied_keys_differ": True}]
    recipe = load_run(out / runs[0]["run"]).recipe
    torch.manual_seed(0)
    expected_weights = weights_sha256(create("lenet", num_classes=10).state_dict())
    assert {r["initial_weights_sha256"] for r in runs} == {expected_weights}
    assert {r["batches_sha256"] for r in runs} == {_expected_batches_sha256(recipe)}
    assert {r["steps"] for r in runs} == {200 // 32}


def test_variants_differ_only_in_the_studied_key_and_train_differently(loss_study):
    _, out, record = loss_study
    first, second = (load_run(out / r["run"]) for r in record["runs"])
    assert recipe_differences(first.recipe, second.recipe) == ["train.loss"]
    assert (first.recipe.train.loss, second.recipe.train.loss) == ("cross_entropy", "mse")
    assert record["runs"][1]["differs_in"] == ["train.loss"] and record["studied_keys"] == ["train.loss"]
    assert first.history[-1]["loss"] != second.history[-1]["loss"]


def test_the_study_writes_curves_and_a_table_of_validation_and_test_scores(loss_study):
    _, out, record = loss_study
    assert (out / "curves.png").stat().st_size > 10_000
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [row["variant"] for row in rows] == ["cross_entropy", "mse"]
    for row, run in zip(rows, record["runs"]):
        test = json.loads((out / run["run"] / "eval_test.json").read_text())
        assert float(row["test_top1"]) == pytest.approx(100 * test["top1"], abs=0.01)
        val = [r["val_top1"] for r in load_run(out / run["run"]).history]
        assert float(row["best_val_top1"]) == pytest.approx(100 * max(val), abs=0.01)
        assert float(row["final_val_top1"]) == pytest.approx(100 * val[-1], abs=0.01)
        assert float(row["train_time_s"]) > 0
    table = (out / "summary.md").read_text()
    assert "| train.loss | runs |" in table and "| mse | 1 |" in table


def test_running_the_study_again_keeps_the_finished_runs(loss_study):
    folder, out, record = loss_study
    checkpoint = out / record["runs"][0]["run"] / "best.pt"
    before = checkpoint.stat().st_mtime_ns
    assert main(["compare", str(folder / "loss.yaml"), "--out", str(out)]) == 0
    assert checkpoint.stat().st_mtime_ns == before
    assert json.loads((out / "compare.json").read_text())["runs"] == record["runs"]


def test_running_a_changed_study_into_the_same_folder_is_refused_before_training(loss_study, capsys):
    folder, out, record = loss_study
    assert main(["compare", str(folder / "loss.yaml"), "--out", str(out), "optim.lr=0.01"]) == 2
    message = capsys.readouterr().err
    assert "optim.lr" in message and "another --out folder" in message
    assert json.loads((out / "compare.json").read_text())["runs"] == record["runs"]


def test_only_variants_of_the_same_architecture_share_the_initial_weights():
    references: list[dict] = []
    relu = load_recipe("quick", ["model.name=lenet", "model.options={}", "seed=3"])
    gelu = load_recipe("quick", ["model.name=lenet", "model.options={}", "model.options.activation=gelu", "seed=3"])
    other = load_recipe("quick", ["model.name=vgg_a", "model.options={}", "model.options.width_multiplier=0.125", "seed=3"])
    first, shared_first = _initial_model(relu, 10, references)
    with torch.no_grad():
        next(first.parameters()).add_(1.0)  # training the first variant must not move the others' start
    second, shared_second = _initial_model(gelu, 10, references)
    _, shared_third = _initial_model(other, 10, references)
    assert shared_first and shared_second and not shared_third
    assert weights_sha256(second.state_dict()) == weights_sha256(references[0])
    assert weights_sha256(second.state_dict()) != weights_sha256(first.state_dict())


def _run(variant: str, batches: str, weights: str = "w", differs=()) -> VariantRun:
    return VariantRun(variant=variant, seed=0, run_dir=Path(variant), overrides=[], initial_weights=weights,
                      shared_initialisation=True, batches=batches, steps=1, wall_s=0.0, differs_in=list(differs))


def test_the_fairness_check_reports_different_batches_weights_or_keys():
    study = Study(recipe="r", variants={"a": ["train.loss=mse"], "b": ["train.loss=bce"]})
    fair = fairness(study, [_run("a", "x"), _run("b", "x", differs=["train.loss"])])[0]
    assert fair["same_batches"] and fair["same_initial_weights"] and fair["only_studied_keys_differ"]
    unfair = fairness(study, [_run("a", "x"), _run("b", "y", weights="v", differs=["train.loss", "optim.lr"])])[0]
    assert not unfair["same_batches"] and not unfair["same_initial_weights"] and not unfair["only_studied_keys_differ"]


def test_a_study_file_reads_vary_and_variants_and_refuses_both_at_once(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump({"recipe": "quick", "vary": {"model.options.activation": ["relu", "gelu"]},
                                    "seeds": [0, 1], "overrides": {"train.epochs": 2}}))
    study = read_study(path)
    assert study.variants == {"relu": ["model.options.activation=relu"], "gelu": ["model.options.activation=gelu"]}
    assert study.seeds == [0, 1] and study.overrides == ["train.epochs=2"] and study.recipe == "quick"
    path.write_text(yaml.safe_dump({"recipe": "quick", "variants": {"adam": {"optim.name": "adam", "optim.lr": 0.001}}},
                                   sort_keys=False))
    assert read_study(path).variants == {"adam": ["optim.name=adam", "optim.lr=0.001"]}
    path.write_text(yaml.safe_dump({"recipe": "quick", "vary": {"train.loss": ["mse"]}, "variants": {"a": {}}}))
    with pytest.raises(CifarlabError, match="exactly one of"):
        read_study(path)
    path.write_text(yaml.safe_dump({"recipe": "quick", "vary": {"train.loss": []}}))
    with pytest.raises(CifarlabError, match="takes one key and a list of values"):  # was a StopIteration
        read_study(path)
    path.write_bytes(b"recipe: quick\nname: \xff\n")
    with pytest.raises(CifarlabError, match=r"is not UTF-8 text \(byte 20\)"):
        read_study(path)


def test_every_shipped_fdu_study_reads_and_resolves_its_recipes():
    folder = Path(__file__).resolve().parents[2] / "src" / "cifarlab" / "recipes" / "fdu" / "studies"
    for name in ("activation", "loss", "optimizer"):
        for suffix in ("", "_cpu"):
            study = read_study(folder / f"{name}{suffix}.yaml")
            first = next(iter(study.variants.values()))
            recipe = load_recipe(study.recipe, [*study.overrides, *first], check_machine=False)
            assert recipe.train.epochs == (50 if not suffix else 5)
            assert recipe.model.name == ("resnet18" if not suffix else "vgg_a_bn")
            assert recipe.eval.test_curve  # the seed's figures show test curves below the training curves
    assert len(read_study(folder / "optimizer.yaml").variants) == 7
    assert read_study("fdu/studies/loss_cpu") == read_study(folder / "loss_cpu.yaml")  # by name, from anywhere


def test_compare_on_a_missing_study_file_exits_with_a_message_that_names_it(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml does not exist" in capsys.readouterr().err
