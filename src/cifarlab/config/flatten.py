"""The one recipe flatten and diff: dotted keys (`optim.lr`, `model.options.widths`) and which of them differ.

Resume, sweeps, lockstep studies and the tracking sinks all judge "what changed" with these two
functions, so one edit (say `model.options.widths`) is named the same way by each of them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from cifarlab.config.loader import recipe_to_dict
from cifarlab.config.recipe import Recipe

_UNSET = "<unset>"


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
