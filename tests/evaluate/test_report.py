"""evaluate_split writes every file of a split; write_report gathers a run folder into report.md."""

import csv
import json

import pytest
import torch
from PIL import Image

from cifarlab.errors import CifarlabError
from cifarlab.evaluate.report import evaluate_split, write_report

from .fakes import MEAN, STD, fake_metrics, tiny_convnet, train_briefly, write_metrics

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
    result = evaluate_split(s.model, s.images, s.labels, s.classes, tmp_path, mean=MEAN, std=STD,
                            split_name="test", tta="flip", batch_size=64)
    _check_split(tmp_path, result, s.model, s.images, s.labels, s.classes, "test")
    assert result["top1"] > 0.5  # the net really learned the colour-coded classes (chance is 0.1)


def test_evaluate_split_on_cifar10_small(tmp_path, request):
    try:
        data = request.getfixturevalue("cifar10_small")
    except pytest.FixtureLookupError:
        pytest.skip("the shared cifar10_small fixture is not defined in tests/conftest.py")
    torch.manual_seed(0)
    model = train_briefly(tiny_convnet(data.num_classes), data.train_images, data.train_labels, steps=15)
    result = evaluate_split(model, data.test_images, data.test_labels, data.classes, tmp_path, mean=MEAN, std=STD,
                            split_name="test", tta="flip", batch_size=64)
    _check_split(tmp_path, result, model, data.test_images, data.test_labels, data.classes, "test")
    assert sum(json.loads((tmp_path / "eval_test.json").read_text())["class_counts"].values()) == 200


def test_write_report_gathers_the_run_folder(tmp_path, synthetic_split):
    s = synthetic_split
    (tmp_path / "recipe.yaml").write_text("name: tiny\nmodel:\n  name: tiny_convnet\nseed: 7\n")
    write_metrics(tmp_path / "metrics.jsonl", fake_metrics(val_top1=(0.4123, 0.5678, 0.5432)))
    result = evaluate_split(s.model, s.images, s.labels, s.classes, tmp_path, mean=MEAN, std=STD,
                            split_name="test", tta="none")
    report = write_report(tmp_path).read_text()
    assert "54.32%" in report and "56.78% (epoch 2)" in report  # final and best validation accuracy
    assert "| training time | 9.0 s |" in report  # the sum of the epochs' times (1.5 + 3.0 + 4.5 s)
    for value in (f"{100 * result['top1']:.2f}%", f"{100 * result['top5']:.2f}%",
                  f"{result['loss']:.4f}", f"{100 * result['ece']:.2f}%"):
        assert value in report
    for name, accuracy in result["per_class_accuracy"].items():
        assert f"| {name} | {100 * accuracy:.2f}% |" in report
    for image in ("curves.png", "confusion_test.png", "misclassified_test.png", "reliability_test.png"):
        assert f"]({image})" in report and (tmp_path / image).is_file()
    assert "tiny_convnet" in report  # the recipe is included
    with Image.open(tmp_path / "curves.png") as image:
        image.verify()


def test_write_report_on_an_empty_folder_and_a_missing_one(tmp_path):
    assert "Nothing to report yet" in write_report(tmp_path).read_text()
    with pytest.raises(CifarlabError, match="does not exist"):
        write_report(tmp_path / "missing")


def test_bad_split_name_is_rejected_before_any_work(tmp_path, synthetic_split):
    s = synthetic_split
    with pytest.raises(CifarlabError, match="split_name"):
        evaluate_split(s.model, s.images, s.labels, s.classes, tmp_path, mean=MEAN, std=STD, split_name="../x")
    assert not any(tmp_path.iterdir())
