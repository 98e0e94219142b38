import sys

import pytest

from cifarlab.config.recipe import Recipe
from cifarlab.errors import CifarlabError
from cifarlab.training.sinks import ConsoleProgress, CsvSink, JsonlSink, TensorBoardSink, build_sinks
from cifarlab.training.sinks.reported import final_metrics, recipe_params, scalar_tags
from tests.training.sinks.conftest import TEST_RESULT, epoch_record


def test_build_sinks_maps_recipe_words_to_sinks_writing_into_the_run_folder(tmp_path):
    sinks = build_sinks(["console", "jsonl", "tensorboard", "csv", "jsonl"], tmp_path, "quick lenet")
    assert [type(sink) for sink in sinks] == [ConsoleProgress, JsonlSink, TensorBoardSink, CsvSink]
    assert sinks[1].path == tmp_path / "metrics.jsonl"
    assert sinks[2].log_dir == tmp_path / "tensorboard"
    assert sinks[3].path == tmp_path / "metrics.csv"
    assert sinks[0].description == "quick lenet"


def test_an_unknown_sink_name_lists_the_known_ones(tmp_path):
    with pytest.raises(CifarlabError, match="unknown 'tensorbord'; choose from console, jsonl, tensorboard"):
        build_sinks(["tensorbord"], tmp_path, "x")


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_a_tracker_without_its_package_names_the_extra_to_install(tmp_path, monkeypatch, name):
    monkeypatch.setitem(sys.modules, name, None)  # import now fails as if it were not installed
    with pytest.raises(CifarlabError, match=rf"pip install 'cifarlab\[{name}\]'"):
        build_sinks(["console", name], tmp_path, "x")


def test_record_numbers_become_tags_without_kind_step_or_missing_values():
    record = dict(epoch_record(1), ema_val_top1=None, val_loss=float("nan"))
    assert scalar_tags(record) == {"epoch/epoch": 1.0, "epoch/lr": 0.025, "epoch/loss": 1.7, "epoch/train_top1": 0.2,
                                   "epoch/images_per_s": 1234.5, "epoch/time_s": 2.5, "val/top1": 0.4}


def test_final_metrics_keep_the_headline_scores_under_the_split():
    assert final_metrics("test", TEST_RESULT) == {"final_test/top1": 0.61, "final_test/top5": 0.95,
                                                  "final_test/loss": 1.2, "final_test/ece": 0.04}


def test_recipe_params_are_dotted_keys_with_plain_values():
    recipe = Recipe()
    recipe.model.options = {"widths": [8, 16], "depth": 3}
    params = recipe_params(recipe)
    assert params["optim.lr"] == 0.1 and params["train.channels_last"] is True
    assert params["model.options.depth"] == 3 and params["model.options.widths"] == "[8, 16]"
    assert params["optim.betas"] == "[0.9, 0.999]" and params["data.root"] == "None"
    assert all(type(value) in (str, int, float, bool) for value in params.values())
