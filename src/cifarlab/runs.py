"""A run folder: the names of its files, the one tolerant metrics reader, and `load_run`.

Every file a run writes is named here and nowhere else:

    recipe.yaml                the resolved recipe; alone it reproduces the run
    indices.json               which images went to train and validation
    metrics.jsonl              one JSON object per line, `kind` "step" or "epoch"
    tensorboard/               the same numbers as TensorBoard scalars
    best.pt, last.pt           checkpoints (best on validation; the latest)
    eval_<split>.json          scores of one evaluated split (val, test, test_ema, ...)
    confusion_<split>.csv/png  its confusion matrix
    misclassified_<split>.png  its highest-loss errors
    reliability_<split>.png    its reliability diagram
    curves.png, report.md      training curves and the report gathering all of the above
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from torch import nn

from cifarlab.config import load_recipe
from cifarlab.config.recipe import Recipe
from cifarlab.errors import CifarlabError

RECIPE = "recipe.yaml"
INDICES = "indices.json"
METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"
BEST = "best.pt"
LAST = "last.pt"
REPORT = "report.md"
CURVES = "curves.png"
LR_FIND_JSON = "lr_find.json"
LR_FIND_PLOT = "lr_find.png"
WEIGHTS_NPZ = "weights.npz"
ROBUSTNESS_JSON = "robustness.json"  # accuracy and ECE per corruption and severity
ROBUSTNESS_PLOT = "robustness.png"  # its heatmap

_EVAL_PREFIX, _EVAL_SUFFIX = "eval_", ".json"
# Splits first in this order, any other (test_ema, corruptions ...) after them by name.
_SPLIT_ORDER = {"val": 0, "test": 1}


def eval_file(split: str) -> str:
    """Name of the scores file of one evaluated split: eval_<split>.json."""
    return f"{_EVAL_PREFIX}{split}{_EVAL_SUFFIX}"


def confusion_csv_file(split: str) -> str:
    """Name of a split's confusion matrix as CSV counts."""
    return f"confusion_{split}.csv"


def confusion_plot_file(split: str) -> str:
    """Name of a split's row-normalised confusion matrix plot."""
    return f"confusion_{split}.png"


def misclassified_plot_file(split: str) -> str:
    """Name of a split's gallery of highest-loss errors."""
    return f"misclassified_{split}.png"


def reliability_plot_file(split: str) -> str:
    """Name of a split's reliability diagram."""
    return f"reliability_{split}.png"


def split_files(split: str) -> dict[str, str]:
    """Every file an evaluation writes for `split`, by role (the `files` entry of eval_<split>.json)."""
    return {
        "eval": eval_file(split),
        "confusion_csv": confusion_csv_file(split),
        "confusion_png": confusion_plot_file(split),
        "misclassified": misclassified_plot_file(split),
        "reliability": reliability_plot_file(split),
    }


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """The JSON objects of a metrics.jsonl; a garbled last line (a crash mid-write) is skipped.

    A garbled line anywhere else is not a crash but a damaged file: CifarlabError naming the
    file and the line.
    """
    path = Path(path)
    if not path.is_file():
        raise CifarlabError(f"no metrics file at {path}; point to a run folder's {METRICS}")
    lines = path.read_text(errors="replace").splitlines()
    last = max((number for number, line in enumerate(lines, start=1) if line.strip()), default=0)
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            if number == last:
                break
            raise CifarlabError(f"{path} line {number} is not JSON; fix or delete that line") from None
        if not isinstance(record, dict):
            if number == last:
                break
            raise CifarlabError(f"{path} line {number} is not a JSON object; fix or delete that line")
        records.append(record)
    return records


def read_evaluations(run_dir: str | os.PathLike) -> dict[str, dict]:
    """split -> content of its eval_<split>.json, val and test first, the rest by name."""
    run_dir = Path(run_dir)
    evaluations = {}
    for path in run_dir.glob(eval_file("*")):
        split = path.name[len(_EVAL_PREFIX) : -len(_EVAL_SUFFIX)]
        try:
            evaluations[split] = json.loads(path.read_text())
        except json.JSONDecodeError:
            raise CifarlabError(f"{path} is not valid JSON; delete it and evaluate that split again") from None
    return dict(sorted(evaluations.items(), key=lambda item: (_SPLIT_ORDER.get(item[0], 2), item[0])))


@dataclass
class Run:
    """One run folder read back: recipe, metrics, evaluations, checkpoints and (lazily) the trained model.

    `load_run(path)` fills it from disk; the trainer may build one directly and hand it the model
    it holds (`Run(dir=..., recipe=..., _model=model)`), so nothing is read back needlessly.
    """

    dir: Path
    recipe: Optional[Recipe] = None
    history: list[dict] = field(default_factory=list)  # epoch records of metrics.jsonl
    steps: list[dict] = field(default_factory=list)  # step records of metrics.jsonl
    evaluations: dict[str, dict] = field(default_factory=dict)  # split -> eval_<split>.json
    checkpoints: dict[str, Path] = field(default_factory=dict)  # "best" / "last" -> path, those present
    chosen_checkpoint: Optional[Path] = None  # a checkpoint file named to load_run: the model comes from it
    _model: Optional[nn.Module] = field(default=None, repr=False)
    _checkpoint: Optional[dict] = field(default=None, repr=False)  # what the model needs of best.pt / last.pt

    @property
    def test(self) -> Optional[dict]:
        """The test split's scores (top1, top5, loss, ece, ...), None when the test set was not evaluated."""
        return self.evaluations.get("test")

    @property
    def checkpoint_path(self) -> Path:
        """The checkpoint the model comes from: the one `load_run` was given, else best.pt (best on validation), else last.pt."""
        if self.chosen_checkpoint is not None:
            return self.chosen_checkpoint
        for role in ("best", "last"):
            if role in self.checkpoints:
                return self.checkpoints[role]
        raise CifarlabError(f"run folder {self.dir} holds no checkpoint ({BEST} or {LAST}); train it first")

    def _saved(self) -> dict:
        if self._checkpoint is None:
            from cifarlab.training.checkpoint import (
                load_checkpoint,  # see Run.model for why here
            )

            path = self.checkpoint_path
            content = load_checkpoint(path)
            # Only the weights and their labels stay in memory, not the optimiser or RNG state.
            self._checkpoint = {key: content.get(key) for key in ("model", "num_classes", "classes", "mean", "std")}
            self._checkpoint["path"] = path
        return self._checkpoint

    @property
    def classes(self) -> list[str]:
        """Class names in the order of the model's outputs."""
        return list(self._saved()["classes"])

    @property
    def mean(self) -> tuple[float, ...]:
        """Per-channel mean (in [0, 1] units) the model's inputs are normalised with."""
        return tuple(self._saved()["mean"])

    @property
    def std(self) -> tuple[float, ...]:
        """Per-channel std (in [0, 1] units) the model's inputs are normalised with."""
        return tuple(self._saved()["std"])

    @property
    def model(self) -> nn.Module:
        """The trained model (best.pt if present, else last.pt) in eval mode, built on first use."""
        if self._model is None:
            # Imported here, not above, so that train (which writes these files) can import the names.
            from cifarlab.training.checkpoint import model_from_checkpoint

            if self.recipe is None:
                raise CifarlabError(f"run folder {self.dir} has no recipe; read it with load_run(path)")
            saved = self._saved()
            model = model_from_checkpoint(self.recipe.model.name, self.recipe.model.options, saved, str(saved["path"]))
            saved["model"] = None  # the model now holds these tensors
            self._model = model.eval()
        return self._model


def load_run(path: str | os.PathLike) -> Run:
    """Read a run folder: recipe.yaml, metrics.jsonl, eval_*.json and which checkpoints exist.

    `path` may also be a checkpoint file inside a run folder (`runs/quick/last.pt`): the run is read
    the same way and its model comes from that file. The model is not built until `Run.model` is first used.
    """
    chosen = Path(path) if Path(path).is_file() else None
    run_dir = chosen.parent if chosen is not None else Path(path)
    if not (run_dir / RECIPE).is_file():
        reason = "the folder does not exist" if not run_dir.exists() else f"it holds no {RECIPE}"
        raise CifarlabError(
            f"{run_dir} is not a cifarlab run folder ({reason}); give the folder a run wrote (runs/<name>)"
        )
    records = read_metrics(run_dir / METRICS) if (run_dir / METRICS).is_file() else []
    return Run(
        dir=run_dir,
        recipe=load_recipe(run_dir / RECIPE, check_machine=False),
        history=[r for r in records if r.get("kind") == "epoch"],
        steps=[r for r in records if r.get("kind") == "step"],
        evaluations=read_evaluations(run_dir),
        checkpoints={role: run_dir / name for role, name in (("best", BEST), ("last", LAST))
                     if (run_dir / name).is_file()},
        chosen_checkpoint=chosen,
    )
