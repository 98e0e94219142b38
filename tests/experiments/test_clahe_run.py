"""A run trained with CLAHE as normalisation is validated, tested and re-evaluated on equalised images.

Each expected number is computed by hand (tests/conftest.py: the CLAHE kernel, mean/std, the model,
softmax), and the same by hand on the stored images differs, so each test tells the two apart.
"""

from __future__ import annotations

import json
import shutil

import pytest

from cifarlab import runs
from cifarlab.cli import main
from tests.conftest import assert_equalised, clahe_scores_by_hand


@pytest.mark.slow
def test_validation_during_training_sees_equalised_images(clahe_run):
    run = runs.load_run(clahe_run)  # one epoch: the validated weights are the final ones
    expected, unequalised = clahe_scores_by_hand(run, "val")
    record = run.history[-1]
    assert_equalised({"top1": record["val_top1"], "loss": record["val_loss"]}, expected, unequalised)


def test_the_final_evaluation_scores_equalised_validation_and_test_images(clahe_run):
    run = runs.load_run(clahe_run)
    for split in ("val", "test"):
        assert_equalised(run.evaluations[split], *clahe_scores_by_hand(run, split))


@pytest.mark.slow
def test_cifarlab_eval_of_the_run_equalises_with_test_time_augmentation_too(clahe_run, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(clahe_run, folder)  # eval rewrites eval_test.json: leave the shared run as it was
    assert main(["eval", str(folder), "--split", "test", "--tta", "flip"]) == 0
    scored = json.loads((folder / "eval_test.json").read_text())
    assert scored["tta"] == "flip"
    assert_equalised(scored, *clahe_scores_by_hand(runs.load_run(folder), "test", tta="flip"))


def test_cifarlab_eval_of_a_bare_checkpoint_file_equalises_as_its_recipe_says(clahe_run, tmp_path):
    checkpoint = tmp_path / "best.pt"
    shutil.copy(clahe_run / runs.BEST, checkpoint)  # no recipe.yaml beside it: scored from the file alone
    assert main(["eval", str(checkpoint), "--split", "val"]) == 0
    scored = json.loads((tmp_path / "best-eval" / "eval_val.json").read_text())
    assert_equalised(scored, *clahe_scores_by_hand(runs.load_run(clahe_run), "val"))
