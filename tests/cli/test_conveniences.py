"""The verbs a new user meets first: --version, recipes, keys, --print-config, data info/grid, eval of a .pt file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import cifarlab
from cifarlab.cli import main
from cifarlab.config import load_recipe, recipe_from_dict
from cifarlab.config.shipped import shipped_recipes
from tests.conftest import load_real, tiny_recipe_data

TINY = tiny_recipe_data(train={"batch_size": 50, "log_every": 1}, eval={"test": False})


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cifarlab {cifarlab.__version__}"


def test_recipes_lists_every_shipped_recipe_with_its_description(capsys):
    assert main(["recipes"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if line.strip()}
    assert set(shipped_recipes()) <= set(lines)
    assert "half-width airbench" in lines["quick"] and "ResNet-18" in lines["fdu/resnet18"]


def test_keys_lists_dotted_keys_with_default_and_help(capsys):
    assert main(["keys", "optim"]) == 0
    out = capsys.readouterr().out
    lr_line = next(line for line in out.splitlines() if line.startswith("optim.lr "))
    assert "0.1" in lr_line and "'find'" in lr_line
    assert "LR range test" in out and "train.epochs" not in out
    assert main(["keys"]) == 0
    assert "train.epochs" in capsys.readouterr().out
    assert main(["keys", "optm"]) == 2
    assert "did you mean 'optim'" in capsys.readouterr().err


def test_print_config_prints_the_resolved_recipe_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    overrides = ["train.epochs=2", "model.options={}"]
    assert main(["train", "quick", "--print-config", *overrides]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert recipe_from_dict(printed) == load_recipe("quick", overrides)
    assert printed["model"]["options"] == {} and printed["train"]["epochs"] == 2.0
    assert list(tmp_path.iterdir()) == []  # no run folder, no runs/


def test_unknown_recipe_name_exits_2_naming_the_closest(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "quik"]) == 2
    err = capsys.readouterr().err
    assert "quick" in err and "cifarlab recipes" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name, classes, per_class", [("cifar10", 10, "5,000"), ("cifar100", 100, "500")])
def test_data_info_describes_the_real_dataset_and_its_files(name, classes, per_class, capsys):
    load_real(name)  # skips without data
    assert main(["data", "info", name]) == 0
    info = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert info["name"] == name and info["classes"].startswith(f"{classes} (")
    assert info["train images"] == f"50,000 ({per_class} per class)"
    assert info["image size"].startswith("32x32, 3 channels")
    assert Path(info["cache"].split(" (")[0]).is_file()
    if info["source"].endswith(".zip"):  # the shared data folder: checksums come from the manifest
        manifest = json.loads(Path(info["source"]).with_suffix(".json").read_text())
        assert info["pixel sha256"].startswith(manifest["pixel_sha256"])


def test_data_grid_shows_random_training_images_of_each_rows_class(tmp_path, capsys):
    data = load_real("cifar100")
    out = tmp_path / "g.png"
    assert main(["data", "grid", "cifar100", "--out", str(out), "--per-class", "4"]) == 0
    assert "wrote" in capsys.readouterr().out
    grid = np.asarray(Image.open(out).convert("RGB"))
    assert grid.shape[0] == 20 * 66  # 100 classes: 20 rows spread over the label range, 64 px tiles + 2 px gaps
    rows = torch.linspace(0, 99, 20).round().long().tolist()
    images = data.train_images.permute(0, 2, 3, 1).numpy()
    for row in (0, 7, 19):
        members = torch.nonzero(data.train_labels == rows[row]).flatten().numpy()
        found = []
        for col in range(4):
            left = grid.shape[1] - (4 - col) * 66
            tile = grid[row * 66: row * 66 + 64: 2, left: left + 64: 2]  # back to 32 x 32
            matches = members[(images[members] == tile).all(axis=(1, 2, 3))]
            assert len(matches) == 1, (row, col)  # a training image of this row's class
            found.append(int(matches[0]))
        assert found != members[:4].tolist()  # drawn at random, not the first images of the class


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """A real 1-epoch lenet run on 200 CIFAR-10 images, without a test evaluation."""
    folder = tmp_path_factory.mktemp("tiny")
    recipe = folder / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({**TINY, "out_dir": str(folder / "runs")}))
    return folder, recipe


def test_train_names_only_the_plots_it_wrote(tiny_run, cifar10, capsys):
    folder, recipe = tiny_run
    assert main(["train", str(recipe)]) == 0
    out = capsys.readouterr().out
    run = folder / "runs" / "tiny"
    assert "confusion_test.png" not in out and not (run / "confusion_test.png").exists()  # eval.test=false
    plots = out.split("plots: ")[1].rstrip(")\n").split(", ")
    assert "confusion_val.png" in plots and all((run / name).is_file() for name in plots)


@pytest.mark.slow
def test_eval_scores_a_checkpoint_file_outside_its_run_folder(tiny_run, cifar10, tmp_path, capsys):
    folder, recipe = tiny_run
    best = folder / "runs" / "tiny" / "best.pt"
    if not best.is_file():
        assert main(["train", str(recipe)]) == 0
    elsewhere = tmp_path / "downloads" / "model.pt"
    elsewhere.parent.mkdir()
    shutil.copy(best, elsewhere)
    capsys.readouterr()
    assert main(["eval", str(elsewhere)]) == 0
    assert "test: top-1" in capsys.readouterr().out
    scores = json.loads((tmp_path / "downloads" / "model-eval" / "eval_test.json").read_text())
    assert main(["eval", str(best.parent)]) == 0  # the same weights scored from their run folder
    in_run = json.loads((best.parent / "eval_test.json").read_text())
    assert scores["top1"] == in_run["top1"] and scores["loss"] == pytest.approx(in_run["loss"], rel=1e-5)
    assert main(["eval", str(elsewhere), "--data", "cifar100"]) == 2
    assert "--data" in capsys.readouterr().err
    assert main(["eval", str(elsewhere), "--model", "resnet18"]) == 2
    assert "does not fit" in capsys.readouterr().err
