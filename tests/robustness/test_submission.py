"""`cifarlab predict`: id,label CSV for a test split and DL4DS ids for corrupted sets."""

from __future__ import annotations

import csv
import re

import numpy as np
import torch

from cifarlab import runs
from cifarlab.cli import main
from cifarlab.data import load_dataset
from cifarlab.evaluation import EvalSettings, Preprocessing, predict
from cifarlab.robustness.dataset import LABELS
from tests.conftest import equalise_by_hand, probabilities_by_hand


def _read(path) -> list[list[str]]:
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def test_predict_a_test_split_writes_index_ids_and_the_model_argmax(tiny_run, tmp_path):
    out = tmp_path / "submission.csv"
    assert main(["predict", str(tiny_run), "--data", "cifar10", "--out", str(out), "--limit", "8"]) == 0
    rows = _read(out)
    assert rows[0] == ["id", "label"] and len(rows) == 9
    ids = [int(row[0]) for row in rows[1:]]
    assert ids == [index * 1250 for index in range(8)]
    run = runs.load_run(tiny_run)
    images = load_dataset("cifar10").test_images[torch.tensor(ids)]
    expected = predict(run.model, images, EvalSettings(Preprocessing(run.mean, run.std))).argmax(dim=1).tolist()
    assert [int(row[1]) for row in rows[1:]] == expected


def test_predict_a_corrupted_folder_uses_distortion_ids_in_corruption_order(tiny_run, tmp_path):
    folder = tmp_path / "c10c"
    assert main(["robustness", "make", "cifar10", "--out", str(folder), "--corruptions", "fog", "snow",
                 "--limit", "6"]) == 0
    out = tmp_path / "ood.csv"
    assert main(["predict", str(tiny_run), "--data", str(folder), "--out", str(out), "--tta", "shift16"]) == 0
    rows = _read(out)[1:]
    assert len(rows) == 2 * 5 * 6
    assert all(re.fullmatch(r"distortion\d{2}_[1-5]_\d+", row[0]) for row in rows)
    # snow is corruption 07 and fog 09; severities 1-5, indexes restarting at 0 in each.
    assert [row[0] for row in rows[:7]] == [f"distortion07_1_{i}" for i in range(6)] + ["distortion07_2_0"]
    assert rows[30][0] == "distortion09_1_0" and rows[-1][0] == "distortion09_5_5"
    assert all(0 <= int(row[1]) < 10 for row in rows)


def test_predict_keeps_the_numbering_of_dl4ds_files(tiny_run, tmp_path):
    folder = tmp_path / "ood-test"
    folder.mkdir()
    images = np.random.default_rng(0).integers(0, 256, (5 * 3, 32, 32, 3), dtype=np.uint8)
    for number in (0, 3):
        np.save(folder / f"distortion{number:02d}.npy", images)
    np.save(folder / LABELS, np.zeros(15, dtype=np.uint8))
    out = tmp_path / "submission.csv"
    assert main(["predict", str(tiny_run), "--data", str(folder), "--out", str(out), "--limit", "2"]) == 0
    ids = [row[0] for row in _read(out)[1:]]
    assert ids[:3] == ["distortion00_1_0", "distortion00_1_1", "distortion00_2_0"]
    assert ids[-1] == "distortion03_5_1" and len(ids) == 2 * 5 * 2


def test_predict_of_a_run_trained_with_clahe_labels_equalised_images(clahe_run, tmp_path):
    out = tmp_path / "submission.csv"
    assert main(["predict", str(clahe_run), "--data", "cifar10", "--out", str(out), "--limit", "500"]) == 0
    rows = _read(out)[1:]
    run = runs.load_run(clahe_run)
    images = load_dataset("cifar10").test_images[torch.tensor([int(row[0]) for row in rows])]
    equalised = probabilities_by_hand(run.model, equalise_by_hand(images), run.mean, run.std).argmax(dim=1).tolist()
    stored = probabilities_by_hand(run.model, images, run.mean, run.std).argmax(dim=1).tolist()
    assert [int(row[1]) for row in rows] == equalised and equalised != stored
