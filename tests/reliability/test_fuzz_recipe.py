"""Every recipe key fuzzed with hostile values: each override loads, or is refused with one `cifarlab: error:` line.

A value the loader accepts must then train (one step on a 200-image slice); a refused one must
end with exit code 2 before anything is written to out_dir. A Python traceback, from loading or
from training, is a bug.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings

from cifarlab.config import load_recipe
from cifarlab.errors import CifarlabError

from .fuzz_values import HOSTILE_TEXTS, near_bounds, overrides, recipe_keys
from .outcome import EXAMPLES, check_outcome, train

BASE = {
    "name": "fuzz", "seed": 0,
    "data": {"dataset": "cifar10", "val_size": 0, "train_limit": 200},  # no validation: no plots, ~1 s a run
    "model": {"name": "lenet"},
    "optim": {"name": "sgd", "lr": 0.05},
    "train": {"epochs": 1, "batch_size": 32, "log_every": 1, "device": "cpu"},
    "eval": {"test": False, "batch_size": 200},
    "log": {"sinks": ["jsonl"]},
}
KEYS = recipe_keys()
# Keys left out of the training fuzz (the loading fuzz still covers them), and why:
NOT_TRAINED = {
    "train.steps": "every fuzzed run is held to one step",
    "train.epochs": "every fuzzed run is held to one step",
    "train.compile": "compiling takes minutes on a CPU",
    "model.name": "a valid name may be a large network; unknown names are refused at load",
    "model.weights": "a valid name downloads official weights",
    "data.dataset": "other datasets; image folders are fuzzed in test_fuzz_image_folder",
    "data.root": "a folder without the data would be downloaded into",
    "out_dir": "a fuzzed path could land outside the test's folder; see test_unusable_run_folders_are_refused",
    "name": "as out_dir",
    "log.sinks": "wandb and mlflow talk to servers",
    "log.project": "read by wandb and mlflow only",
    "log.tracking_uri": "read by mlflow only",
}
TRAINED_KEYS = [key for key in KEYS if key.name not in NOT_TRAINED]
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def base_file(tmp_path_factory, cifar10):
    path = tmp_path_factory.mktemp("fuzz") / "base.yaml"
    path.write_text(yaml.safe_dump(BASE))
    return path


def test_fuzz_covers_every_recipe_key():
    names = {key.name for key in KEYS}
    assert {"optim.lr", "train.device", "train.batch_size", "data.val_size", "augment.cutout"} <= names
    assert set(NOT_TRAINED) <= names  # a renamed key must not silently drop out of the fuzz


@pytest.mark.slow
def test_every_key_loads_or_refuses_each_hostile_value_with_one_message(base_file):
    tracebacks = []
    for key in KEYS:
        for text in HOSTILE_TEXTS + near_bounds(key):
            try:
                load_recipe(base_file, [f"{key.name}={text}"])
            except CifarlabError as exc:
                assert str(exc).strip(), f"{key.name}={text!r}: empty message"
            except Exception as exc:  # noqa: BLE001 - any other exception is the bug this test looks for
                tracebacks.append(f"{key.name}={text[:40]!r}: {type(exc).__name__}: {exc}")
    assert not tracebacks, "\n".join(tracebacks)


@settings(max_examples=5 * EXAMPLES, **SETTINGS)
@given(drawn=overrides(KEYS))
def test_random_overrides_of_any_keys_load_or_are_refused(base_file, drawn):
    try:
        load_recipe(base_file, drawn)
    except CifarlabError as exc:
        assert str(exc).strip()


@pytest.mark.slow
@settings(max_examples=EXAMPLES, **SETTINGS)
@given(drawn=overrides(TRAINED_KEYS, most=2, plausible=True))
def test_random_overrides_train_one_step_or_are_refused_leaving_nothing(base_file, drawn):
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "runs"
        # train.steps=1 comes last, so no drawn value can make the run long.
        code, stderr = train(base_file, [f"out_dir={out}", *drawn, "train.steps=1"], Path(folder))
        check_outcome(code, stderr, out)
        event("trained one step" if code == 0 else "refused")


@pytest.mark.parametrize("word", [
    "optim.lr=-1", "train.device=banana", "train.device=cuda:7", "train.batch_size=100000", "train.epochs=0",
    "name=" + "x" * 300, "out_dir=" + "y" * 300 + "/runs", "data.val_size=50000", "augment.resize=100000",
    "model.options={width: 1e9}", "train.precision=fp16", "train.export_npz=true", "optim.lr=" + "1" * 400,
])
def test_known_bad_values_are_refused_before_anything_is_written(base_file, tmp_path, word):
    """Values that crashed, filled memory or failed only after training: each is one error naming its key."""
    out = tmp_path / "runs"
    code, stderr = train(base_file, [f"out_dir={out}", word], tmp_path)
    assert code == 2, stderr
    check_outcome(code, stderr, out)
    assert word.split("=")[0].split(".")[-1] in stderr.split("cifarlab: error: ")[1], stderr


def test_unusable_run_folders_are_refused(base_file, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, stderr = train(base_file, [f"out_dir={blocker}/runs", "train.steps=1"], tmp_path)
    assert code == 2 and "cifarlab: error: " in stderr and "Traceback" not in stderr, stderr
    assert blocker.read_text() == "not a folder"


@pytest.mark.parametrize("word", ["optim.backbone_lr_scale=0", "train.loss=''"])
def test_a_refusal_while_building_the_trainer_leaves_no_run_folder(base_file, tmp_path, word):
    out = tmp_path / "runs"
    code, stderr = train(base_file, [f"out_dir={out}", word, "train.steps=1"], tmp_path)
    assert code == 2, stderr
    check_outcome(code, stderr, out)


@pytest.mark.parametrize("word", ["augment.resize=8", "augment.crop=8"])
def test_images_too_small_for_the_network_are_one_error(base_file, tmp_path, word):
    out = tmp_path / "runs"
    code, stderr = train(base_file, [f"out_dir={out}", word, "train.steps=1"], tmp_path)
    assert code == 2, stderr
    check_outcome(code, stderr, out)
