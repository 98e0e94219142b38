"""What every metrics sink reports, named one way: metric tags, recipe parameters, final scores, report images.

TensorBoard, Weights & Biases and MLflow show the same run; using the same names in all three
lets a reader move between them (and between them and metrics.jsonl) without a lookup table.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any, Union

from cifarlab.config.flatten import flatten

ParamValue = Union[str, int, float, bool]

# Scores of a final evaluation that trackers show; the rest of eval_<split>.json stays in the file.
FINAL_METRICS = ("top1", "top5", "loss", "ece")


def scalar_tags(record: dict) -> dict[str, float]:
    """The numbers of a metrics record as tags: `val_top1` -> `val/top1` (`test_top1`, the display-only
    test curve, -> `test/top1`), others under `<kind>/`.

    `step` and `kind` locate the record and are no metric; missing (None) and non-finite values are
    left out, since no tracker can plot them.
    """
    tags = {}
    for key, value in record.items():
        if key in ("kind", "step") or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(value):
            continue
        split = key.split("_", 1)[0]
        tag = f"{split}/{key[len(split) + 1:]}" if split in ("val", "test") else f"{record['kind']}/{key}"
        tags[tag] = float(value)
    return tags


def final_metrics(split: str, result: dict) -> dict[str, float]:
    """The headline scores of a final evaluation as tags: `final_test/top1`, `final_test/ece` ...

    The `final_` prefix keeps them apart from the validation numbers logged during training.
    """
    return {
        f"final_{split}/{name}": float(result[name])
        for name in FINAL_METRICS
        if isinstance(result.get(name), (int, float)) and math.isfinite(result[name])
    }


def recipe_params(recipe: Any) -> dict[str, ParamValue]:
    """The resolved recipe flattened to dotted keys (`optim.lr`) with str/int/float/bool values.

    Lists become their JSON text and None the word "None", which every tracker accepts as a value.
    """
    return {key: _param_value(value) for key, value in flatten(dataclasses.asdict(recipe)).items()}


def _param_value(value: Any) -> ParamValue:
    if isinstance(value, (bool, int, float, str)):
        return value
    return "None" if value is None else json.dumps(value)


def report_images(run_dir: Path) -> list[Path]:
    """The PNG plots the run folder holds now (curves, confusion, misclassified, reliability ...), by name."""
    return sorted(Path(run_dir).glob("*.png"))
