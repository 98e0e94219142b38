"""eval.test_curve: the test split scored at every epoch end for display only (the FDU seed's figures)."""

import json

import pytest
import torch

from cifarlab.evaluation.curve_panels import TEST_ROW, VALIDATION_ROW, curve_panels
from cifarlab.runner.evaluate import evaluate_saved
from cifarlab.runner.run import run_recipe
from cifarlab.runs.checkpoint import load_checkpoint


def _epoch_records(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in lines if r["kind"] == "epoch"]


@pytest.mark.slow
def test_the_test_curve_is_recorded_every_epoch_and_changes_nothing_the_run_decides(tiny_recipe):
    # A plateau schedule and best-checkpoint selection both watch validation: scoring the test split as
    # well must leave every weight, lr and selection exactly as without it.
    sections = dict(schedule={"name": "plateau", "patience": 0}, train={"epochs": 3})
    plain = run_recipe(tiny_recipe(name="plain", **sections))
    curved = run_recipe(tiny_recipe(name="curved", eval={"test": False, "batch_size": 200, "test_curve": True},
                                    **sections))
    plain_epochs, curved_epochs = _epoch_records(plain.run_dir), _epoch_records(curved.run_dir)
    assert len(curved_epochs) == 3
    assert all(r["test_top1"] is not None and r["test_loss"] > 0 for r in curved_epochs)
    assert all("test_top1" not in r for r in plain_epochs)
    for before, after in zip(plain_epochs, curved_epochs):
        assert (before["val_top1"], before["val_loss"], before["lr"]) == (after["val_top1"], after["val_loss"], after["lr"])
    for name in ("last.pt", "best.pt"):
        a, b = load_checkpoint(plain.run_dir / name), load_checkpoint(curved.run_dir / name)
        assert a["progress"] == b["progress"]
        assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    # The curve's last point is the last weights scored on the whole test split.
    scored = evaluate_saved(curved.run_dir / "last.pt", split="test")
    assert scored["num_images"] == 10000
    assert curved_epochs[-1]["test_top1"] == pytest.approx(scored["top1"], abs=1e-4)


def test_the_lower_row_shows_the_test_curve_only_where_a_run_recorded_one():
    validation_only = [{"kind": "epoch", "epoch": 1, "val_top1": 0.5}]
    with_test = validation_only + [{"kind": "epoch", "epoch": 1, "val_top1": 0.5, "test_top1": 0.4}]
    assert curve_panels(validation_only)[1] == VALIDATION_ROW
    assert curve_panels(with_test)[1] == TEST_ROW
    assert all("display only" in panel.title for panel in TEST_ROW)
