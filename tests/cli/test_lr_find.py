"""`cifarlab lr-find`: the LR range test of a recipe alone, its two files, and its refusals."""

import json

import pytest
from PIL import Image

from cifarlab.cli import main

# The demo recipe on a slice of CIFAR-10 (200 training images, batch 32), so 50 steps take seconds.
SLICE = ["data.train_limit=200", "train.batch_size=32", "train.device=cpu"]


@pytest.mark.slow
def test_lr_find_quick_writes_lr_max_and_lr_min_and_their_plot(tmp_path, monkeypatch, capsys, cifar10):
    monkeypatch.chdir(tmp_path)
    assert main(["lr-find", "quick", "--steps", "50", "--out", "lrf", *SLICE]) == 0
    found = json.loads((tmp_path / "lrf" / "lr_find.json").read_text())
    assert 5 <= len(found["lrs"]) == len(found["smoothed_losses"]) <= 50
    assert found["lrs"][0] == pytest.approx(1e-7) and found["lrs"] == sorted(found["lrs"])
    assert 1e-7 <= found["lr_min"] < found["lr_max"] <= 10
    assert "steepest descent" in found["lr_max_rule"] and found["lr_min_rule"]
    assert Image.open(tmp_path / "lrf" / "lr_find.png").size[0] > 300
    out = capsys.readouterr().out
    assert f"lr_max {found['lr_max']:.3g}" in out and f"lr_min {found['lr_min']:.3g}" in out
    assert not (tmp_path / "runs").exists()  # nothing trained, no run folder


def test_the_range_and_steps_are_the_callers(tmp_path, cifar10):
    assert main(["lr-find", "quick", "--start", "1e-4", "--end", "1", "--steps", "8", "--out", str(tmp_path), *SLICE]) == 0
    lrs = json.loads((tmp_path / "lr_find.json").read_text())["lrs"]
    assert lrs[0] == pytest.approx(1e-4) and len(lrs) <= 8
    if len(lrs) == 8:  # the loss did not blow up first
        assert lrs[-1] == pytest.approx(1.0)


@pytest.mark.parametrize("options, problem", [
    (["--start", "1", "--end", "0.1"], "the LR range must rise"),
    (["--start", "0.1", "--end", "0.1"], "the LR range must rise"),
    (["--steps", "4"], "--steps 4 is too few"),
])
def test_a_bad_range_is_one_error_line_with_exit_2(tmp_path, capsys, options, problem):
    out = tmp_path / "lrf"
    assert main(["lr-find", "quick", "--out", str(out), *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cifarlab: error: ") and problem in err[0]
    assert not out.exists()


def test_an_output_that_is_a_file_is_one_error_line_with_exit_2(tmp_path, capsys):
    taken = tmp_path / "lrf"
    taken.write_text("not a folder")
    assert main(["lr-find", "quick", "--out", str(taken)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cifarlab: error: --out ") and "is a file" in err[0]
    assert taken.read_text() == "not a folder"
