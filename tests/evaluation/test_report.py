"""write_report gathers a run folder into report.md, every accuracy row saying which model and which TTA."""

import json

import pytest
from PIL import Image

from cifarlab.errors import CifarlabError
from cifarlab.evaluation import EvalSettings, Preprocessing
from cifarlab.evaluation.report import write_report
from cifarlab.evaluation.scoring import score_split
from cifarlab.evaluation.split import evaluate_split, write_split

from .fakes import MEAN, STD, fake_metrics, write_metrics


def _rows(report: str) -> dict[str, str]:
    """The Summary table of a report as label -> value."""
    section = report.split("## Summary", 1)[1].split("\n## ", 1)[0]
    cells = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("| ") and "---" not in line]
    return {label.strip(): value.strip() for label, value in (c for c in cells if len(c) == 2) if label.strip()}


def test_write_report_gathers_the_run_folder(tmp_path, synthetic_split):
    s = synthetic_split
    (tmp_path / "recipe.yaml").write_text("name: tiny\nmodel:\n  name: tiny_convnet\nseed: 7\n")
    write_metrics(tmp_path / "metrics.jsonl", fake_metrics(val_top1=(0.4123, 0.5678, 0.5432)))
    result = evaluate_split(s.model, s.images, s.labels, s.classes, tmp_path,
                            EvalSettings(Preprocessing(MEAN, STD), split="test", tta="none"))
    report = write_report(tmp_path).read_text()
    rows = _rows(report)
    assert rows["val top-1 during training, last epoch (no TTA)"] == "54.32%"
    assert rows["val top-1 during training, best epoch (no TTA)"] == "56.78% (epoch 2)"
    assert rows["training time"] == "9.0 s"  # the sum of the epochs' times (1.5 + 3.0 + 4.5 s)
    # No checkpoint in this folder and no label given: the report does not claim best or last.
    label = "evaluated model, no TTA"
    assert rows[f"test top-1 ({label})"] == f"{100 * result['top1']:.2f}%"
    assert rows[f"test top-5 ({label})"] == f"{100 * result['top5']:.2f}%"
    assert rows[f"test loss ({label})"] == f"{result['loss']:.4f}"
    assert rows[f"test ECE ({label})"] == f"{100 * result['ece']:.2f}%"
    for name, accuracy in result["per_class_accuracy"].items():
        assert f"| {name} | {100 * accuracy:.2f}% |" in report
    for image in ("curves.png", "confusion_test.png", "misclassified_test.png", "reliability_test.png"):
        assert f"]({image})" in report and (tmp_path / image).is_file()
    assert "tiny_convnet" in report  # the recipe is included
    with Image.open(tmp_path / "curves.png") as image:
        image.verify()


def test_val_rows_name_the_model_and_tta_and_confused_pairs_get_a_table(tmp_path, synthetic_split):
    s = synthetic_split
    write_metrics(tmp_path / "metrics.jsonl", fake_metrics(val_top1=(0.4123, 0.5678, 0.5432)))
    (tmp_path / "best.pt").write_bytes(b"")  # the report only asks which checkpoints exist
    scored = score_split(s.model, s.images, s.labels, s.classes, EvalSettings(Preprocessing(MEAN, STD), tta="flip"))
    val = write_split(scored, s.images, s.labels, s.classes, tmp_path, "val")
    (tmp_path / "reliability_val.png").unlink()  # a plot that is gone is not listed
    # Two more evaluations as JSON alone (their plots never drawn): an EMA one and one labelled by its caller.
    ema = {**scored.summary, "split": "test_ema", "tta": "none"}
    labelled = {**scored.summary, "split": "test", "tta": "shift16", "model_label": "last checkpoint"}
    for evaluation in (ema, labelled):
        (tmp_path / f"eval_{evaluation['split']}.json").write_text(json.dumps(evaluation))
    report = write_report(tmp_path).read_text()
    rows = _rows(report)
    assert rows["val top-1 (best checkpoint, tta flip)"] == f"{100 * val['top1']:.2f}%"
    assert rows["val top-1 during training, last epoch (no TTA)"] == "54.32%"
    assert rows["test_ema top-1 (EMA weights, no TTA)"] == f"{100 * ema['top1']:.2f}%"
    assert rows["test top-1 (last checkpoint, tta shift16)"] == f"{100 * labelled['top1']:.2f}%"
    assert not [label for label in rows if "top-1" in label and "(" not in label]  # no unlabelled accuracy

    confused = report.split("## Most confused classes", 1)[1].split("\n## ", 1)[0]
    assert "### val (best checkpoint, tta flip)" in confused
    for pair in val["most_confused"]:
        assert f"| {pair['true']} | {pair['predicted']} | {pair['count']} |" in confused
    assert val["most_confused"], "the briefly trained net makes some mistakes to list"

    assert "](confusion_val.png)" in report and "reliability_val.png" not in report
    assert "_test.png" not in report and "_test_ema.png" not in report
    listed = [line.split("](")[1].rstrip(")") for line in report.splitlines() if line.startswith("![")]
    assert listed and all((tmp_path / name).is_file() for name in listed)


def test_write_report_on_an_empty_folder_and_a_missing_one(tmp_path):
    assert "Nothing to report yet" in write_report(tmp_path).read_text()
    with pytest.raises(CifarlabError, match="does not exist"):
        write_report(tmp_path / "missing")
