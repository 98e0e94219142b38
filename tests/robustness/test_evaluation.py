"""`cifarlab robustness eval` on a real tiny run: table, robustness.json, heatmap, report section."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from cifarlab import runs
from cifarlab.cli import main
from cifarlab.data import load_dataset
from cifarlab.errors import CifarlabError
from cifarlab.evaluation import expected_calibration_error, run_settings, score_split
from cifarlab.robustness import corrupt
from cifarlab.robustness.dataset import LABELS, spaced_indices
from cifarlab.robustness.evaluation import evaluate_robustness, summarise
from tests.conftest import equalise_by_hand, probabilities_by_hand


@pytest.mark.slow
def test_eval_on_the_fly_writes_table_json_heatmap_and_report(tiny_run, capsys):
    assert main(["robustness", "eval", str(tiny_run), "--corruptions", "gaussian_noise", "contrast",
                 "--severities", "1", "5", "--limit", "40"]) == 0
    printed = capsys.readouterr().out
    assert "gaussian_noise" in printed and "mCE" in printed
    result = json.loads((tiny_run / runs.ROBUSTNESS_JSON).read_text())
    assert result["corruptions"] == ["gaussian_noise", "contrast"] and result["severities"] == [1, 5]
    assert result["num_images"] == 40 and result["tta"] == "none" and result["model_label"] == "best.pt"
    assert set(result["accuracy"]["contrast"]) == {"1", "5"} and set(result["ece_per_severity"]) == {"1", "5"}
    errors = [1 - np.mean(list(row.values())) for row in result["accuracy"].values()]
    assert result["mean_corruption_error"] == pytest.approx(np.mean(errors))
    assert result["relative_mce"] == pytest.approx(result["mean_corruption_error"] - (1 - result["clean"]["top1"]))
    # The cell is the run's model scored on the corrupted images themselves.
    run = runs.load_run(tiny_run)
    test = load_dataset("cifar10")
    chosen = spaced_indices(len(test.test_labels), 40)
    images = corrupt(test.test_images[chosen], "contrast", 5, seed=0)
    direct = score_split(run.model, images, test.test_labels[chosen], run.classes,
                         run_settings(run.model, run.recipe, run.mean, run.std))
    assert result["accuracy"]["contrast"]["5"] == pytest.approx(direct.summary["top1"])
    with Image.open(tiny_run / runs.ROBUSTNESS_PLOT) as plot:
        assert plot.size[0] > 200 and plot.size[1] > 100
    report = (tiny_run / runs.REPORT).read_text()
    section = report[report.index("## Robustness to corruptions"):]
    assert "| contrast |" in section and "| mCE |" in section and f"]({runs.ROBUSTNESS_PLOT})" in section
    assert report.count(f"]({runs.ROBUSTNESS_PLOT})") == 1  # not again among the other plots


def test_eval_reads_a_made_folder_and_refuses_labels_of_another_dataset(tiny_run, tmp_path, capsys):
    out = tmp_path / "c10c"
    assert main(["robustness", "make", "cifar10", "--out", str(out), "--corruptions", "fog", "saturate",
                 "--limit", "30"]) == 0
    result = evaluate_robustness(tiny_run, data=out, tta="flip", limit=30)
    # The extra corruptions stay out of the benchmark's mCE unless asked for.
    assert result["corruptions"] == ["fog"] and result["severities"] == [1, 2, 3, 4, 5]
    assert evaluate_robustness(tiny_run, data=out, corruptions=["saturate"], limit=5)["corruptions"] == ["saturate"]
    assert result["num_images"] == 30 and result["source"] == str(out)
    np.save(out / LABELS, np.full(150, 57, dtype=np.uint8))  # CIFAR-100 labels beside a CIFAR-10 run
    with pytest.raises(CifarlabError, match="100 classes|10 classes"):
        evaluate_robustness(tiny_run, data=out)
    assert main(["robustness", "eval", str(tiny_run), "--data", str(tmp_path / "missing")]) == 2
    assert "cifarlab robustness make" in capsys.readouterr().err


def test_summary_definitions():
    summary = summarise({"a": {"1": 0.8, "2": 0.6}, "b": {"1": 0.5, "2": 0.5}}, clean_top1=0.9)
    assert summary["mean_accuracy"] == {"a": pytest.approx(0.7), "b": pytest.approx(0.5)}
    assert summary["mean_corruption_error"] == pytest.approx(0.4)
    assert summary["mean_corrupted_accuracy"] == pytest.approx(0.6)
    assert summary["relative_mce"] == pytest.approx(0.3)


def test_pooled_ece_agrees_with_the_calibration_module():
    from cifarlab.robustness.evaluation import _ece

    generator = torch.Generator().manual_seed(0)
    probs = torch.softmax(3 * torch.randn(500, 10, generator=generator), dim=1)
    labels = torch.randint(0, 10, (500,), generator=generator)
    confidence, predicted = probs.max(dim=1)
    assert _ece(confidence, predicted == labels) == pytest.approx(expected_calibration_error(probs, labels))


def test_a_damaged_robustness_json_stops_the_report_with_the_fix(tmp_path):
    from cifarlab.evaluation import write_report

    (tmp_path / runs.ROBUSTNESS_JSON).write_text('{"severities": [1]}')
    with pytest.raises(CifarlabError, match="run `cifarlab robustness eval` again"):
        write_report(tmp_path)


def test_a_run_trained_with_clahe_sees_each_image_corrupted_first_then_equalised(clahe_run, monkeypatch):
    run = runs.load_run(clahe_run)
    seen = []  # every batch the model is given
    run.model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    monkeypatch.setattr(runs, "load_run", lambda path: run)
    result = evaluate_robustness(clahe_run, corruptions=["contrast"], severities=[5], limit=200)
    test = load_dataset("cifar10")
    chosen = spaced_indices(len(test.test_labels), 200)
    clean, labels = test.test_images[chosen], test.test_labels[chosen]
    corrupted = corrupt(clean, "contrast", 5, seed=0)

    def normalised(images):
        return (images.float() / 255 - torch.tensor(run.mean).view(1, 3, 1, 1)) / torch.tensor(run.std).view(1, 3, 1, 1)

    assert len(seen) == 2  # the clean images, then the corrupted ones, one batch each
    torch.testing.assert_close(seen[0], normalised(equalise_by_hand(clean)))
    torch.testing.assert_close(seen[1], normalised(equalise_by_hand(corrupted)))
    assert not torch.allclose(seen[1], normalised(corrupt(equalise_by_hand(clean), "contrast", 5, seed=0)), atol=1e-3)
    probs = probabilities_by_hand(run.model, equalise_by_hand(corrupted), run.mean, run.std)
    assert result["ece"]["contrast"]["5"] == pytest.approx(expected_calibration_error(probs, labels), abs=1e-6)
