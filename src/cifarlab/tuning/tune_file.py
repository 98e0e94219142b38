"""A tune file: what `cifarlab tune` searches, read and checked whole before any trial starts.

    recipe: quick                      # a path (relative to the tune file, else the working folder) or a shipped name
    overrides: {train.epochs: 2}       # fixed for every trial
    space:                             # see cifarlab.tuning.space
      optim.lr: {low: 0.01, high: 1.0, log: true}
      train.batch_size: [64, 128]
    metric: val.top1                   # maximised; val.loss is minimised. Never a test score.
    trials: 20                         # finished (complete or pruned) trials the study ends with
    sampler: {name: tpe, seed: 0}      # see cifarlab.tuning.algorithms
    pruner: median
    out: tunes/my_study                # optional: the study folder

Shipped tune files live in the recipes folder under tunes/ (`cifarlab tune tunes/era_lr_wd`).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from cifarlab.config.safe_yaml import read_yaml_file
from cifarlab.config.shipped import RECIPES_DIR, TUNES_FOLDER, resolve_recipe, shipped_file, shipped_name
from cifarlab.errors import CifarlabError
from cifarlab.sweeps.grid import as_override_text
from cifarlab.tuning import algorithms
from cifarlab.tuning.space import Dimension, parse_space
from cifarlab.tuning.space_check import check_space, integer_keys

TUNE_KEYS = ("recipe", "overrides", "space", "metric", "trials", "sampler", "pruner", "out")
DEFAULT_TRIALS = 20


@dataclass(frozen=True)
class Metric:
    """A tuning metric: its name, its key in eval_val.json, its key in the epoch record, and its direction."""

    name: str
    score: str
    epoch_key: str
    direction: str


METRICS = {"val.top1": Metric("val.top1", "top1", "val_top1", "maximize"),
           "val.loss": Metric("val.loss", "loss", "val_loss", "minimize")}


@dataclass
class TuneSpec:
    """A checked tune file: the recipe file, its fixed overrides, the space, the metric and the study settings."""

    path: Path
    recipe: Path
    recipe_label: str  # how a retrain command names the recipe: its shipped name, else its path
    space: list[Dimension]
    overrides: list[str] = field(default_factory=list)
    metric: str = "val.top1"
    trials: int = DEFAULT_TRIALS
    sampler: dict = field(default_factory=lambda: {"name": algorithms.DEFAULT_SAMPLER})
    pruner: dict = field(default_factory=lambda: {"name": algorithms.DEFAULT_PRUNER})
    out: Optional[Path] = None

    @property
    def objective(self) -> Metric:
        return METRICS[self.metric]

    def to_dict(self) -> dict:
        """Plain values, for worker processes and cluster jobs (rebuilt by `from_dict` without checking again)."""
        return {"path": str(self.path), "recipe": str(self.recipe), "recipe_label": self.recipe_label,
                "space": [dim.to_dict() for dim in self.space], "overrides": list(self.overrides),
                "metric": self.metric, "trials": self.trials, "sampler": dict(self.sampler),
                "pruner": dict(self.pruner), "out": None if self.out is None else str(self.out)}

    @classmethod
    def from_dict(cls, data: dict) -> TuneSpec:
        return cls(**{**data, "path": Path(data["path"]), "recipe": Path(data["recipe"]),
                      "space": [Dimension.from_dict(d) for d in data["space"]],
                      "out": None if data.get("out") is None else Path(data["out"])})


def resolve_tune_file(name_or_path: str | Path) -> Path:
    """An existing file, else the shipped tune file of that name (`tunes/era_lr_wd`)."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_file(name_or_path) or shipped_file(f"{TUNES_FOLDER}/{shipped_name(str(name_or_path))}")
    if shipped is not None and shipped.is_relative_to(RECIPES_DIR / TUNES_FOLDER):
        return shipped
    names = sorted(p.stem for p in (RECIPES_DIR / TUNES_FOLDER).glob("*.yaml"))
    raise CifarlabError(f"tune file {str(name_or_path)!r} not found (relative to {Path.cwd()}), and no shipped tune file "
                        f"has that name; shipped: {', '.join(f'{TUNES_FOLDER}/{n}' for n in names)}")


def read_tune_file(name_or_path: str | Path, extra_overrides: list[str] = ()) -> TuneSpec:
    """The TuneSpec of a tune file, with command-line overrides after its own; CifarlabError on anything it gets wrong."""
    path = resolve_tune_file(name_or_path)
    source = f"tune file {path}"
    content = read_yaml_file(path, "tune file")
    if not isinstance(content, dict):
        raise CifarlabError(f"{source} must hold a mapping with recipe: and space: (see `cifarlab tune --help`)")
    _check_keys(content, source)
    recipe = _recipe_path(path, content["recipe"], source)
    overrides = _override_words(content.get("overrides"), source) + list(extra_overrides)
    space = content.get("space")
    spec = TuneSpec(path=path, recipe=recipe, recipe_label=_recipe_label(recipe),
                    space=parse_space(space, source, integer_keys([str(k) for k in space] if isinstance(space, dict) else [])),
                    overrides=overrides, metric=_metric(content.get("metric", "val.top1"), source),
                    trials=_trial_count(content.get("trials", DEFAULT_TRIALS), source),
                    sampler=algorithms.algorithm_setting(content.get("sampler"), "sampler", algorithms.SAMPLERS,
                                                         algorithms.DEFAULT_SAMPLER, source),
                    pruner=algorithms.algorithm_setting(content.get("pruner"), "pruner", algorithms.PRUNERS,
                                                        algorithms.DEFAULT_PRUNER, source),
                    out=Path(content["out"]) if content.get("out") else None)
    _check_overlap(spec, source)
    check_space(spec.space, spec.recipe, spec.overrides, source)
    algorithms.build_sampler(spec.sampler, spec.space, source)  # Optuna's own argument checks, before any trial
    algorithms.build_pruner(spec.pruner, source)
    return spec


def _check_keys(content: dict, source: str) -> None:
    for key in content:
        if key not in TUNE_KEYS:
            close = difflib.get_close_matches(str(key), TUNE_KEYS, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise CifarlabError(f"{source}: unknown key {key!r}{hint} A tune file knows {', '.join(TUNE_KEYS)}")
    for key in ("recipe", "space"):
        if key not in content:
            raise CifarlabError(f"{source} needs `{key}:` (a tune file has at least recipe: and space:)")


def _recipe_path(path: Path, recipe: Any, source: str) -> Path:
    beside = path.parent / str(recipe)
    try:
        return beside if beside.is_file() else resolve_recipe(str(recipe))
    except CifarlabError as exc:
        raise CifarlabError(f"{source}: {exc}") from None


def _recipe_label(recipe: Path) -> str:
    resolved = recipe.resolve()
    if resolved.is_relative_to(RECIPES_DIR) and resolved.suffix in (".yaml", ".yml"):
        return resolved.relative_to(RECIPES_DIR).with_suffix("").as_posix()
    return str(recipe)


def _override_words(overrides: Any, source: str) -> list[str]:
    if overrides is None:
        return []
    if not isinstance(overrides, dict):
        raise CifarlabError(f"{source}: `overrides:` maps recipe keys to values, e.g. overrides: {{train.epochs: 2}}")
    return [f"{key}={as_override_text(value)}" for key, value in overrides.items()]


def _metric(name: Any, source: str) -> str:
    if isinstance(name, str) and name.split(".")[0].startswith("test"):
        raise CifarlabError(f"{source}: metric {name!r} is a test score; the test split is never a tuning metric (choosing "
                            f"on it leaks the test set into the model). Use {' or '.join(METRICS)}")
    if name not in METRICS:
        close = difflib.get_close_matches(str(name), METRICS, n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise CifarlabError(f"{source}: unknown metric {name!r}{hint} Use {' (maximised) or '.join(METRICS)} (minimised)")
    return name


def _trial_count(trials: Any, source: str) -> int:
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 1:
        raise CifarlabError(f"{source}: trials must be a whole number >= 1, got {trials!r}")
    return trials


def _check_overlap(spec: TuneSpec, source: str) -> None:
    fixed = {word.partition("=")[0].strip() for word in spec.overrides}
    both = [dim.key for dim in spec.space if dim.key in fixed]
    if both:
        raise CifarlabError(f"{source}: {', '.join(both)} is both fixed (overrides) and searched (space); drop one of them")
