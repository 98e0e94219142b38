"""Check a search space against its recipe before any trial: every key exists, every value is one it accepts.

The recipe loader is the judge, so a tune file is held to exactly the rules a `cifarlab train`
override is: each choice, and both ends of each range, are loaded into the recipe (a mistyped key
gets the loader's did-you-mean). `model.options.*` keys are free-form in the recipe, so for those
the model is built once with each value, as the first trial would build it.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

from cifarlab.config import load_recipe
from cifarlab.config.recipe import Recipe
from cifarlab.errors import CifarlabError
from cifarlab.sweeps.grid import as_override_text
from cifarlab.tuning.space import Dimension

RESERVED_KEYS = ("name", "out_dir")  # the study names and places each trial's run folder itself
MODEL_OPTIONS = "model.options."


def integer_keys(keys: list[str]) -> frozenset:
    """Those of `keys` the recipe types as an integer (train.batch_size): their ranges sample integers."""
    return frozenset(key for key in keys if _hint(key) in (int, typing.Optional[int]))


def _hint(dotted: str):
    cls, hint = Recipe, None
    for part in dotted.split("."):
        if not dataclasses.is_dataclass(cls):
            return None
        hint = typing.get_type_hints(cls).get(part)
        cls = hint
    return hint


def override_word(key: str, value) -> str:
    """`key=value` as a command-line override reads it back (floats keep every digit)."""
    return f"{key}={as_override_text(value)}"


def load_trial_recipe(recipe: Path, overrides: list[str], values: dict) -> Recipe:
    """The recipe with the fixed overrides and one value per searched key, loaded and checked."""
    return load_recipe(recipe, [*overrides, *(override_word(key, value) for key, value in values.items())])


def check_space(space: list[Dimension], recipe: Path, overrides: list[str], source: str) -> Recipe:
    """Raise CifarlabError naming the first key or value the recipe refuses; returns the recipe without the space."""
    for dim in space:
        if dim.key in RESERVED_KEYS:
            raise CifarlabError(f"{source}: space key {dim.key} is set by the study (each trial is trials/NNNN); "
                                "drop it from the space")
    try:
        base = load_recipe(recipe, overrides)
    except CifarlabError as exc:
        raise CifarlabError(f"{source}: {_as_tune_file(str(exc))}") from None
    _check_validation_split(base, source, "")
    for dim in space:
        for value in dim.probe_values():
            where = f"{source}, space key {dim.key}={as_override_text(value)}"
            try:
                probe = load_trial_recipe(recipe, overrides, {dim.key: value})
                if dim.key.startswith(MODEL_OPTIONS):
                    _build_model(probe)
            except CifarlabError as exc:
                raise CifarlabError(f"{where}: {_as_tune_file(str(exc))}") from None
            _check_validation_split(probe, source, f" with {dim.key}={as_override_text(value)}")
    return base


def _as_tune_file(message: str) -> str:
    # The loader names overrides as set "on the command line"; here they come from the tune file.
    return message.replace("set on the command line", "set in the tune file")


def _check_validation_split(recipe: Recipe, source: str, setting: str) -> None:
    if recipe.data.full_train or recipe.data.val_size == 0:
        raise CifarlabError(
            f"{source}: the recipe{setting} has no validation split (data.full_train={str(recipe.data.full_train).lower()}, "
            f"data.val_size={recipe.data.val_size}), and trials are scored on validation, never on the test set; "
            "add data.full_train: false and data.val_size: 5000 to the tune file's overrides")


def _build_model(recipe: Recipe) -> None:
    """Build the recipe's model with its options (no weights: only the options are in question)."""
    from cifarlab.models import create

    create(recipe.model.name, num_classes=10, **recipe.model.options)
