"""`load_run`: a run folder read back as a `Run` (recipe, metrics, evaluations, checkpoints, model)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from torch import nn

from cifarlab.config import load_recipe
from cifarlab.config.recipe import Recipe
from cifarlab.errors import CifarlabError
from cifarlab.runs.checkpoint import load_checkpoint, model_from_checkpoint
from cifarlab.runs.files import BEST, LAST, METRICS, RECIPE
from cifarlab.runs.metrics_file import read_evaluations, read_metrics


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
