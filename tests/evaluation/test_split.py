"""write_split writes every file of a scored split; evaluate_split scores and writes in one call."""

import csv
import json

import pytest
import torch
from PIL import Image

from cifarlab.errors import CifarlabError
from cifarlab.evaluation import EvalSettings, Preprocessing
from cifarlab.evaluation.scoring import score_split
from cifarlab.evaluation.split import evaluate_split, write_split

from .fakes import MEAN, STD, tiny_convnet, train_briefly

PREPROCESSING = Preprocessing(MEAN, STD)
SPLIT_FILES = ["eval_{}.json", "confusion_{}.csv", "confusion_{}.png", "misclassified_{}.png", "reliability_{}.png"]


def _read_confusion_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0][1:], rows[1:]
    return header, [r[0] for r in body], torch.tensor([[int(v) for v in r[1:]] for r in body])


def _check_split(out_dir, result, model, images, labels, classes, split):
    for pattern in SPLIT_FILES:
        assert (out_dir / pattern.format(split)).is_file(), pattern.format(split)
    for pattern in SPLIT_FILES[2:]:
        with Image.open(out_dir / pattern.format(split)) as image:
            image.verify()
    # The CSV is the confusion matrix of the model's own argmax, counted here independently.
    header, row_names, confusion = _read_confusion_csv(out_dir / f"confusion_{split}.csv")
    assert header == list(classes) and row_names == list(classes)
    model.eval()
    with torch.no_grad():
        x = (images.float() / 255 - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
        preds = ((model(x).softmax(1) + model(x.flip(-1)).softmax(1)) / 2).argmax(1)
    counted = torch.zeros(len(classes), len(classes), dtype=torch.long)
    for y, p in zip(labels.tolist(), preds.tolist()):
        counted[y, p] += 1
    assert torch.equal(confusion, counted)
    saved = json.loads((out_dir / f"eval_{split}.json").read_text())
    assert saved["top1"] == pytest.approx(counted.trace().item() / len(labels))
    assert saved["tta"] == "flip" and saved["num_images"] == len(labels)
    assert list(saved["per_class_accuracy"]) == list(classes)
    for k, name in enumerate(classes):
        if counted[k].sum() > 0:
            assert saved["per_class_accuracy"][name] == pytest.approx((counted[k, k] / counted[k].sum()).item())
    assert 0.0 <= saved["ece"] <= 1.0 and saved["loss"] > 0
    assert result["top1"] == saved["top1"] and torch.equal(result["confusion"], counted)


def test_evaluate_split_on_a_briefly_trained_convnet(tmp_path, synthetic_split):
    s = synthetic_split
    result = evaluate_split(s.model, s.images, s.labels, s.classes, tmp_path,
                            EvalSettings(PREPROCESSING, split="test", tta="flip", batch_size=64))
    _check_split(tmp_path, result, s.model, s.images, s.labels, s.classes, "test")
    assert result["top1"] > 0.5  # the net really learned the colour-coded classes (chance is 0.1)


def test_evaluate_split_on_cifar10_small(tmp_path, cifar10_small):
    data = cifar10_small
    torch.manual_seed(0)
    model = train_briefly(tiny_convnet(data.num_classes), data.train_images, data.train_labels, steps=15)
    result = evaluate_split(model, data.test_images, data.test_labels, data.classes, tmp_path,
                            EvalSettings(PREPROCESSING, split="test", tta="flip", batch_size=64))
    _check_split(tmp_path, result, model, data.test_images, data.test_labels, data.classes, "test")
    assert sum(json.loads((tmp_path / "eval_test.json").read_text())["class_counts"].values()) == 200


def test_bad_split_name_is_rejected_before_any_work(tmp_path, synthetic_split):
    s = synthetic_split
    with pytest.raises(CifarlabError, match="split_name"):
        evaluate_split(s.model, s.images, s.labels, s.classes, tmp_path, EvalSettings(PREPROCESSING, split="../x"))
    assert not any(tmp_path.iterdir())


def test_score_split_writes_nothing_and_write_split_writes_the_same_numbers(tmp_path, monkeypatch, synthetic_split):
    s = synthetic_split
    monkeypatch.chdir(tmp_path)  # a stray relative write would land here
    evaluation = score_split(s.model, s.images, s.labels, s.classes, EvalSettings(PREPROCESSING, tta="flip", batch_size=64),
                             model_label="best checkpoint")
    assert not any(tmp_path.iterdir())
    assert evaluation.probs.shape == (len(s.labels), len(s.classes))
    assert evaluation.confusion.sum() == len(s.labels)
    assert evaluation.summary["top1"] == pytest.approx(
        (evaluation.probs.argmax(1) == s.labels).double().mean().item())

    out = tmp_path / "run"
    written = write_split(evaluation, s.images, s.labels, s.classes, out, "val")
    _check_split(out, {**written, "confusion": evaluation.confusion}, s.model, s.images, s.labels, s.classes, "val")
    saved = json.loads((out / "eval_val.json").read_text())
    assert saved == written and saved["split"] == "val" and saved["model_label"] == "best checkpoint"
    assert saved["files"]["misclassified"] == "misclassified_val.png"


def test_most_confused_pairs_are_the_largest_off_diagonal_counts_in_the_json(tmp_path, synthetic_split):
    s = synthetic_split
    result = evaluate_split(s.model, s.images, s.labels, s.classes, tmp_path, EvalSettings(PREPROCESSING))
    confusion = result["confusion"]
    pairs = json.loads((tmp_path / "eval_test.json").read_text())["most_confused"]
    errors = [(confusion[i, j].item(), i, j) for i in range(10) for j in range(10) if i != j and confusion[i, j] > 0]
    expected = sorted(errors, key=lambda e: -e[0])[:10]
    assert [p["count"] for p in pairs] == [count for count, _, _ in expected]
    for pair in pairs:
        assert confusion[s.classes.index(pair["true"]), s.classes.index(pair["predicted"])] == pair["count"]
        assert pair["true"] != pair["predicted"]
