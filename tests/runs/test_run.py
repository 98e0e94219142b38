"""cifarlab.runs: the tolerant metrics reader and load_run on a real run folder."""

import json
import shutil

import pytest
import torch

from cifarlab.config import recipe_from_dict, recipe_to_yaml
from cifarlab.data.prepare import prepare_splits
from cifarlab.errors import CifarlabError
from cifarlab.evaluation import EvalSettings, Preprocessing
from cifarlab.evaluation.predict import predict
from cifarlab.runner.run import run_recipe
from cifarlab.runs import (
    BEST,
    LAST,
    METRICS,
    RECIPE,
    Run,
    eval_file,
    load_run,
    read_metrics,
)
from tests.conftest import tiny_recipe_data

TINY = tiny_recipe_data(train={"epochs": 2}, eval={"tta": "flip"})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cifar10):
    """A real run folder: LeNet trained for two epochs on 200 CIFAR-10 images, then evaluated."""
    out_dir = tmp_path_factory.mktemp("runs")
    result = run_recipe(recipe_from_dict({**TINY, "out_dir": str(out_dir)}, source="test"))
    assert result.status == "finished"
    return result


def _lines(records: list[dict]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


RECORDS = [{"kind": "step", "step": 1, "loss": 2.3}, {"kind": "epoch", "step": 2, "epoch": 1, "val_top1": 0.2},
           {"kind": "step", "step": 3, "loss": 2.1}]


def test_metrics_reader_skips_a_truncated_last_line(tmp_path):
    path = tmp_path / METRICS
    path.write_text(_lines(RECORDS) + '{"kind": "step", "ste')  # a crash in the middle of a write
    assert read_metrics(path) == RECORDS
    path.write_text(_lines(RECORDS) + '{"kind": "step", "ste\n\n')  # blank lines after it change nothing
    assert read_metrics(path) == RECORDS
    path.write_text(_lines(RECORDS))
    assert read_metrics(path) == RECORDS


def test_metrics_reader_refuses_a_garbled_line_in_the_middle_naming_file_and_line(tmp_path):
    path = tmp_path / METRICS
    text = _lines(RECORDS).splitlines()
    path.write_text("\n".join([text[0], '{"kind": "ep', *text[1:]]) + "\n")
    with pytest.raises(CifarlabError, match=r"metrics\.jsonl line 2 is not JSON"):
        read_metrics(path)
    with pytest.raises(CifarlabError, match="no metrics file"):
        read_metrics(tmp_path / "missing.jsonl")


@pytest.mark.slow
def test_load_run_reads_recipe_history_evaluations_and_checkpoints(tiny_run):
    run = load_run(tiny_run.run_dir)
    assert run.dir == tiny_run.run_dir and run.recipe.model.name == "lenet" and run.recipe.eval.tta == "flip"
    assert [record["epoch"] for record in run.history] == [1, 2]
    assert all(record["kind"] == "epoch" and "val_top1" in record for record in run.history)
    steps = [record["step"] for record in run.steps]
    assert steps and steps == sorted(steps) and all(record["kind"] == "step" for record in run.steps)
    assert set(run.evaluations) == {"val", "test"}
    assert run.test == json.loads((tiny_run.run_dir / eval_file("test")).read_text())
    assert run.test["top1"] == tiny_run.test["top1"] and {"top1", "top5", "loss", "ece"} <= set(run.test)
    assert run.checkpoints == {"best": tiny_run.run_dir / BEST, "last": tiny_run.run_dir / LAST}
    assert run.checkpoint_path.name == BEST


def test_run_model_scores_the_test_split_exactly_as_the_run_did(tiny_run):
    run = load_run(tiny_run.run_dir)
    model = run.model
    assert model is run.model  # built once
    assert not any(module.training for module in model.modules())
    splits = prepare_splits(run.recipe.data, run.recipe.seed)
    assert run.classes == list(splits.classes)
    assert run.mean == pytest.approx(splits.mean) and run.std == pytest.approx(splits.std)
    settings = EvalSettings(Preprocessing(run.mean, run.std), tta=run.recipe.eval.tta, batch_size=run.recipe.eval.batch_size)
    probs = predict(model, splits.test_images, settings)
    accuracy = (probs.argmax(1) == splits.test_labels).double().mean().item()
    assert accuracy == run.test["top1"]
    saved = torch.load(run.dir / BEST, map_location="cpu", weights_only=False)["model"]
    assert all(torch.equal(value, saved[key]) for key, value in model.state_dict().items())


def test_load_run_of_a_checkpoint_file_takes_the_model_from_that_file(tiny_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(tiny_run.run_dir, folder)
    content = torch.load(folder / LAST, map_location="cpu", weights_only=True)
    content["model"] = {key: value + 1 if value.is_floating_point() else value for key, value in content["model"].items()}
    torch.save(content, folder / "other.pt")
    run = load_run(folder / "other.pt")
    assert run.dir == folder and run.checkpoint_path == folder / "other.pt" and set(run.checkpoints) == {"best", "last"}
    assert all(torch.equal(value, content["model"][key]) for key, value in run.model.state_dict().items())


def test_load_run_refuses_a_folder_that_is_not_a_run(tmp_path):
    (tmp_path / METRICS).write_text(_lines(RECORDS))
    with pytest.raises(CifarlabError, match=rf"{tmp_path.name} is not a cifarlab run folder.*{RECIPE}"):
        load_run(tmp_path)
    with pytest.raises(CifarlabError, match="not a cifarlab run folder.*does not exist"):
        load_run(tmp_path / "missing")


def test_a_run_without_checkpoints_says_so_when_its_model_is_asked_for(tmp_path):
    recipe = recipe_from_dict({**TINY, "out_dir": str(tmp_path)}, source="test")
    (tmp_path / RECIPE).write_text(recipe_to_yaml(recipe))
    (tmp_path / METRICS).write_text(_lines(RECORDS) + '{"kind": "ep')
    run = load_run(tmp_path)
    assert run.history == [RECORDS[1]] and run.steps == [RECORDS[0], RECORDS[2]]
    assert run.evaluations == {} and run.test is None and run.checkpoints == {}
    with pytest.raises(CifarlabError, match="holds no checkpoint"):
        _ = run.model


def test_a_run_built_by_the_trainer_hands_back_its_own_model(tmp_path):
    model = torch.nn.Linear(3, 2)
    run = Run(dir=tmp_path, _model=model)
    assert run.model is model and run.test is None
