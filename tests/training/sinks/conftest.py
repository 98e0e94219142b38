"""A stand-in trainer and the records a two-epoch run of 8 steps (4 per epoch, logged every 2) emits."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from PIL import Image

from cifarlab.config import recipe_from_dict

STEPS_PER_EPOCH = 4
TOTAL_STEPS = 8


def step_record(step: int) -> dict:
    return {"kind": "step", "step": step, "lr": 0.1 / step, "epoch": step / STEPS_PER_EPOCH,
            "loss": 2.0 - 0.1 * step, "train_top1": 0.1 + 0.05 * step, "images_per_s": 1000.0 + step}


def epoch_record(epoch: int) -> dict:
    step = epoch * STEPS_PER_EPOCH
    return {"step": step, "epoch": epoch, "lr": 0.1 / step, "kind": "epoch", "loss": 1.9 - 0.2 * epoch,
            "train_top1": 0.2 * epoch, "images_per_s": 1234.5, "time_s": 2.5, "val_loss": 1.5 - 0.1 * epoch,
            "val_top1": 0.3 + 0.1 * epoch}


def records_up_to(last_step: int, first_step: int = 1) -> list[dict]:
    """The records in the order the loop emits them: step records, and an epoch record at each epoch end."""
    records = []
    for step in range(first_step, last_step + 1):
        if step % 2 == 0:
            records.append(step_record(step))
        if step % STEPS_PER_EPOCH == 0:
            records.append(epoch_record(step // STEPS_PER_EPOCH))
    return records


def feed(sink, trainer, records: list[dict]) -> None:
    """Hand records to a sink the way the loop does: step records to on_log, epoch records to on_epoch."""
    for record in records:
        if record["kind"] == "step":
            sink.on_log(trainer, record)
        else:
            sink.on_epoch(trainer, record)


TEST_RESULT = {"top1": 0.61, "top5": 0.95, "loss": 1.2, "ece": 0.04, "per_class": {"cat": 0.5}, "tta": "none"}


@pytest.fixture
def trainer(tmp_path: Path) -> SimpleNamespace:
    """What sinks may read of a Trainer: the resolved recipe, the run folder and the epoch length."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    recipe = recipe_from_dict({"name": "sinktest", "optim": {"lr": 0.05}, "model": {"name": "lenet"}}, source="test")
    return SimpleNamespace(recipe=recipe, run_dir=run_dir, steps_per_epoch=STEPS_PER_EPOCH)


@pytest.fixture
def report_pngs(trainer) -> list[Path]:
    """Two report plots as real PNG files in the run folder (RGBA, as matplotlib writes them)."""
    paths = []
    for name, colour in (("curves.png", (200, 30, 30, 255)), ("confusion_test.png", (30, 30, 200, 255))):
        path = trainer.run_dir / name
        Image.new("RGBA", (40, 30), colour).save(path)
        paths.append(path)
    return paths
