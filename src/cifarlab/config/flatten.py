"""The one recipe flatten and diff: dotted keys (`optim.lr`, `model.options.widths`) and which of them differ.

Resume, sweeps, lockstep studies and the tracking sinks all judge "what changed" with these two
functions, so one edit (say `model.options.widths`) is named the same way by each of them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from typing import Any

from cifarlab.config.loader import recipe_to_dict
from cifarlab.config.recipe import Recipe

_UNSET = "<unset>"
# Sections and keys that no trained weight and no score depends on: what names a run, where its files and
# metrics go, and how the C library hands out memory (a speed, not a value).
RESULT_NEUTRAL = ("name", "description", "out_dir", "log", "train.allocator")
# What names a run and where it ran, rather than what it trains: two seeds of one recipe, on a CPU or a GPU,
# share every other value.
RUN_IDENTITY = (*RESULT_NEUTRAL, "seed", "train.device", "train.threads")


def flatten(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one level of dotted keys; every mapping is descended, `model.options` included.

    An empty mapping adds no key (unset and empty options are the same recipe). Keys already dotted
    (a flat dict saved by an older checkpoint) are kept and their mapping values descended too.
    """
    flat: dict[str, Any] = {}
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{dotted}."))
        else:
            flat[dotted] = value
    return flat


def recipe_values(recipe: Recipe) -> dict[str, Any]:
    """Every value of a recipe under its dotted key."""
    return flatten(recipe_to_dict(recipe))


def _ignored(key: str, ignore: Collection[str]) -> bool:
    return any(key == name or key.startswith(f"{name}.") for name in ignore)


def without(values: Mapping[str, Any], ignore: Collection[str]) -> dict[str, Any]:
    """`values` less the keys `ignore` names, a name standing for itself and, as a section, every key under it."""
    return {key: value for key, value in values.items() if not _ignored(key, ignore)}


def differing_keys(values: Mapping[str, Any], other: Mapping[str, Any], ignore: Collection[str] = ()) -> list[str]:
    """The dotted keys whose values differ between two flattened recipes, sorted.

    A key present on one side only differs; `ignore` names keys or whole sections (`log`) to leave out.
    """
    a, b = flatten(values), flatten(other)
    return sorted(key for key in a.keys() | b.keys()
                  if not _ignored(key, ignore) and a.get(key, _UNSET) != b.get(key, _UNSET))


def settings_digest(recipe: Recipe, ignore: Collection[str] = RUN_IDENTITY) -> str:
    """The sha256 (16 hex digits) of a recipe's values less `ignore`: equal digests, equal training settings.

    Whether the values came from the file or from overrides makes no difference, so a benchmark row run as
    `fast100.yaml train.epochs=32` matches the recipe once the file says 32, and a row of an older version of
    the file no longer does.
    """
    values = without(recipe_values(recipe), ignore)
    text = json.dumps(values, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
