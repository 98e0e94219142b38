"""Portable weights: `cifarlab export` writes a run's weights to .safetensors and `create` rebuilds the same model."""

from __future__ import annotations

import pytest
import torch

import cifarlab
from cifarlab.cli import main
from cifarlab.config import recipe_from_dict
from cifarlab.errors import CifarlabError
from cifarlab.models import create, model_for_weights
from cifarlab.models.input_config import InputConfig
from cifarlab.models.portable import read_header
from cifarlab.runner.run import run_recipe
from cifarlab.runs.checkpoint import load_checkpoint
from tests.conftest import assert_equalised, clahe_scores_by_hand

TINY = {
    "name": "tiny_export", "seed": 3,
    "data": {"dataset": "cifar10", "val_size": 100, "train_limit": 200},
    "model": {"name": "lenet", "options": {"activation": "elu"}},
    "augment": {"resize": 40, "crop": 32},  # LeNet takes 32x32 only
    "train": {"epochs": 1, "batch_size": 32, "device": "cpu", "channels_last": False},
    "eval": {"test": False},
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory, cifar10):
    """A LeNet (ELU) trained one epoch on 200 CIFAR-10 images, exported through the command line."""
    out_dir = tmp_path_factory.mktemp("runs")
    result = run_recipe(recipe_from_dict({**TINY, "out_dir": str(out_dir)}, source="test"))
    assert result.status == "finished"
    path = out_dir / "lenet.safetensors"
    assert main(["export", str(result.run_dir), "--out", str(path)]) == 0
    return result.run_dir, path


def normalised(images: torch.Tensor, config) -> torch.Tensor:
    mean = torch.tensor(config.mean).view(1, 3, 1, 1)
    std = torch.tensor(config.std).view(1, 3, 1, 1)
    return (images.float() / 255 - mean) / std


def test_exported_file_rebuilds_a_model_with_identical_logits(exported, cifar10):
    run_dir, path = exported
    checkpoint = load_checkpoint(run_dir / "best.pt")
    trained = create("lenet", checkpoint["num_classes"], activation="elu")
    trained.load_state_dict(checkpoint["model"])
    loaded = create(weights=path)
    assert isinstance(loaded, type(trained))
    images = normalised(cifar10.test_images[:64], loaded.input_config)
    with torch.inference_mode():
        assert torch.equal(loaded.eval()(images), trained.eval()(images))
    assert any(isinstance(m, torch.nn.ELU) for m in loaded.modules())  # options came from the file


def test_exported_file_records_statistics_classes_and_geometry(exported):
    run_dir, path = exported
    checkpoint = load_checkpoint(run_dir / "best.pt")
    header = read_header(path)
    assert (header.model, header.num_classes, header.options) == ("lenet", 10, {"activation": "elu"})
    assert list(header.classes) == list(checkpoint["classes"])
    config = create("lenet", weights=path).input_config
    assert config.mean == pytest.approx(tuple(checkpoint["mean"]))
    assert config.std == pytest.approx(tuple(checkpoint["std"]))
    assert (config.resize, config.crop) == (40, 32)
    assert config.weights == str(path)
    assert model_for_weights(path) == "lenet"


def test_a_file_for_another_model_or_class_count_is_refused(exported):
    _, path = exported
    with pytest.raises(CifarlabError, match="holds lenet with 10 classes, not resnet18"):
        create("resnet18", weights=path)
    with pytest.raises(CifarlabError, match="not lenet with 100 classes"):
        create("lenet", num_classes=100, weights=path)


def test_a_damaged_or_foreign_file_is_refused(tmp_path, exported):
    _, path = exported
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CifarlabError, match="not a readable .safetensors"):
        create(weights=damaged)
    from safetensors.torch import save_file

    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(CifarlabError, match="cifarlab export"):
        create(weights=foreign)


def test_export_of_a_folder_without_a_run_fails_cleanly(tmp_path, capsys):
    out = tmp_path / "none.safetensors"
    assert main(["export", str(tmp_path), "--out", str(out)]) == 2
    assert "cifarlab: error:" in capsys.readouterr().err
    assert not out.exists()


def test_a_full_disk_is_one_error_line_and_no_file(exported, tmp_path, capsys, monkeypatch):
    import safetensors.torch
    from safetensors import SafetensorError

    def disk_full(tensors, filename, metadata=None):
        # What safetensors 0.8 raised when it filled a 3 MB tmpfs (its writer is Rust, so no OSError).
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    out = tmp_path / "model.safetensors"
    run_dir, _ = exported
    assert main(["export", str(run_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cifarlab: error: cannot write {out} (No space left on device): the disk is full")
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_an_exported_clahe_run_says_its_inputs_are_equalised_and_scores_as_the_run(clahe_run, tmp_path):
    path = tmp_path / "clahe.safetensors"
    assert main(["export", str(clahe_run), "--out", str(path)]) == 0
    config = read_header(path).input_config
    assert (config.clahe_clip_limit, config.clahe_grid) == (2.0, 4)
    # A bare model from the file is equalised as its input config says, as the run's test images were.
    run = cifarlab.load_run(clahe_run)
    assert_equalised(cifarlab.evaluate(create(weights=path), data="cifar10"), *clahe_scores_by_hand(run, "test"))


def test_files_without_clahe_load_and_are_written_as_before(exported):
    _, path = exported
    metadata = read_header(path).input_config.to_json()
    assert "clahe" not in metadata  # earlier cifarlab versions read this file too
    written_before = '{"crop": 32, "input_size": [3, 32, 32], "interpolation": "bilinear", "mean": [0.5, 0.5, 0.5], ' \
                     '"resize": 40, "std": [0.25, 0.25, 0.25], "weights": null}'
    old = InputConfig.from_json(written_before)
    assert (old.clahe_clip_limit, old.clahe_grid, old.resize) == (None, None, 40)
    assert old.to_json() == written_before
