"""Hostile recipe values for the fuzz tests: every recipe key with the values most likely to break it.

Values are drawn as the text a user types after `key=` on the command line, so the loader's own
YAML reading is fuzzed too: wrong types, values just outside a field's bounds, huge and empty
values, unfinished YAML, odd strings.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

import yaml
from hypothesis import strategies as st

from cifarlab.config.recipe import Recipe

# The same in every draw: these catch the common slips (types, YAML oddities, special floats).
HOSTILE_TEXTS = [
    "", "null", "~", "-1", "0", "1", "-0.0", "0.5", "1e400", "-1e400", "nan", ".nan", "inf", ".inf", "-.inf",
    "1e-320", "99999999999999999999999", "1e9", "0x10", "1_000", "true", "yes", "off", "[]", "{}", "[1,2",
    "{a: 1}", "[[1]]", "[null]", "[0.9, 2]", "[-1, 5]", "[5, 1]", "{x: {y: 1}}", "'quoted'", "\U0001F642",
    "a\tb", "../..", "/", "x" * 5000, "!!python/object/apply:os.system [echo]", "&a [*a]", "*a", "2024-01-01",
    "{width: 1e9}", "- a", "%", "@", "`", "key: value", "[" * 50, "1" * 400,
]


@dataclass(frozen=True)
class Key:
    """One settable recipe key: its dotted name, type hint and metadata (min, max)."""

    name: str
    hint: Any
    metadata: dict


def recipe_keys(cls: type = Recipe, prefix: str = "") -> list[Key]:
    """Every leaf key of the recipe, walked from its dataclasses (so a new key is fuzzed too)."""
    hints = typing.get_type_hints(cls)
    keys = []
    for field in dataclasses.fields(cls):
        hint = hints[field.name]
        if dataclasses.is_dataclass(hint):
            keys += recipe_keys(hint, f"{prefix}{field.name}.")
        else:
            keys.append(Key(f"{prefix}{field.name}", hint, dict(field.metadata)))
    return keys


def near_bounds(key: Key) -> list[str]:
    """Values at and just past a key's bounds, and the Literal words changed a little."""
    values = []
    for bound, step in ((key.metadata.get("min"), -1), (key.metadata.get("max"), 1)):
        if bound is not None:
            values += [str(bound), str(bound + step), str(bound + step * 1e-9)]
    words = [w for w in _literal_words(key.hint) if isinstance(w, str)]
    values += [w.upper() for w in words] + [w + "x" for w in words] + [f"[{w}]" for w in words[:1]]
    return values


def _literal_words(hint: Any) -> list:
    if typing.get_origin(hint) is typing.Literal:
        return list(typing.get_args(hint))
    return [w for arm in typing.get_args(hint) for w in _literal_words(arm)]


_SCALARS = st.one_of(
    st.integers(min_value=-2**70, max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.booleans(),
    st.none(),
)


def _flow(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True, width=10_000).strip().removesuffix("...").strip()


def hostile_value(key: Key) -> st.SearchStrategy[str]:
    """Text for `key=...`: a fixed hostile value, one near the key's bounds, or random YAML scalars and lists."""
    return st.one_of(
        st.sampled_from(HOSTILE_TEXTS + near_bounds(key)),
        _SCALARS.map(_flow),
        st.lists(_SCALARS, max_size=4).map(_flow),
        st.dictionaries(st.text(max_size=6), _SCALARS, max_size=3).map(_flow),
        st.text(max_size=40),
    )


def plausible_value(key: Key) -> st.SearchStrategy[str]:
    """Text for `key=...` of the key's own type, anywhere in its range: mostly accepted, so the run really trains."""
    return _of_type(key.hint, key.metadata).map(_flow)


def _of_type(hint: Any, meta: dict) -> st.SearchStrategy:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    low, high = meta.get("min"), meta.get("max")
    if origin is typing.Literal:
        return st.sampled_from(args)
    if args and origin not in (list, dict):  # Optional[...] and other unions
        return st.one_of(*[_of_type(arm, meta) for arm in args])
    if hint is type(None):
        return st.none()
    if hint is bool:
        return st.booleans()
    if hint is int:
        low = -3 if low is None else low
        return st.integers(min_value=low, max_value=low + 40 if high is None else high)
    if hint is float:
        low = -1.0 if low is None else low
        return st.floats(min_value=low, max_value=low + 10.0 if high is None else high)
    if origin is list:
        items = st.lists(_of_type(args[0], {}), max_size=5)
        return items.map(sorted) if args[0] in (int, float) else items  # step lists are sorted in practice
    if origin is dict or hint is dict:
        return st.just({})
    return st.text(max_size=10)


def overrides(keys: list[Key], most: int = 3, plausible: bool = False) -> st.SearchStrategy[list[str]]:
    """1 to `most` `key=value` overrides of distinct keys, each hostile or (with `plausible`) often of its own type."""
    def value(key: Key) -> st.SearchStrategy[str]:
        return st.one_of(plausible_value(key), hostile_value(key)) if plausible else hostile_value(key)

    return st.lists(st.sampled_from(keys), min_size=1, max_size=most, unique_by=lambda key: key.name).flatmap(
        lambda chosen: st.tuples(*[value(key).map(lambda text, name=key.name: f"{name}={text}")
                                  for key in chosen]).map(list))
