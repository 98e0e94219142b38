"""Recipe field types: check and convert a value to a field's type hint, and say in words what a field accepts.

The loader (`cifarlab.config.loader`) walks the recipe's dataclasses; this module knows the types:
`coerce` converts a YAML value to the hint (int -> float, '5e-4' -> float, bounds from the field's
`metadata` `min`/`max`) or raises `Mismatch`; `describe` turns the hint into the words of the error
message ('an integer >= 1', 'one of sgd, adam, ...') and `suggest_word` offers the closest word.
"""

from __future__ import annotations

import copy
import difflib
import math
import re
import reprlib
import types
import typing
from typing import Any, Literal

# What YAML may hand over as text although it is a number: PyYAML reads `5e-4` (no dot) as a string.
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


class Mismatch(Exception):
    """A value that the type at hand does not accept (turned into a message by the caller)."""


def is_union(hint: Any) -> bool:
    return typing.get_origin(hint) in (typing.Union, types.UnionType)


def coerce(hint: Any, value: Any, meta: dict) -> Any:
    """Return `value` converted to `hint` (int -> float, '5e-4' -> float) or raise Mismatch."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return copy.deepcopy(value)
    if is_union(hint):
        if value is None and type(None) in args:
            return None
        for arm in args:
            if arm is not type(None):
                try:
                    return coerce(arm, value, meta)
                except Mismatch:
                    pass
        raise Mismatch
    if origin is Literal:
        if any(value == word and type(value) is type(word) for word in args):
            return value
        raise Mismatch
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise Mismatch
        return [coerce(args[0] if args else Any, item, meta) for item in value]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise Mismatch
        return {k: coerce(args[1] if args else Any, v, meta) for k, v in value.items()}
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise Mismatch
    if hint is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return within_bounds(value, meta)
        raise Mismatch
    if hint is float:
        return _number(value, meta)
    if hint is str:
        if isinstance(value, str):
            return value
        raise Mismatch
    raise TypeError(f"the recipe loader cannot check fields of type {hint!r}; extend coerce for it")


def _number(value: Any, meta: dict) -> float:
    if isinstance(value, str) and NUMBER.fullmatch(value.strip()):
        value = float(value)  # PyYAML reads `5e-4` (no dot) as a string
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            number = float(value)  # an integer of 400 digits has no float: OverflowError
        except OverflowError:
            raise Mismatch from None
        if math.isfinite(number):
            return within_bounds(number, meta)
    raise Mismatch


def within_bounds(value: float, meta: dict) -> float:
    lo, hi = meta.get("min"), meta.get("max")
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise Mismatch
    return value


def describe(hint: Any, meta: dict) -> str:
    """What a field accepts, in words: 'an integer >= 1', 'one of fp32, bf16, fp16', ..."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if is_union(hint):
        arms = [describe(a, meta) for a in args if a is not type(None)]
        return " or ".join(arms + (["null"] if type(None) in args else []))
    if origin is Literal:
        words = [str(w) for w in args]
        return f"'{words[0]}'" if len(words) == 1 else f"one of {', '.join(words)}"
    if origin is list:
        plural = {int: "integers", float: "numbers", str: "strings", bool: "true/false values"}
        item = args[0] if args else Any
        return f"a list of {plural.get(item) or 'items each ' + describe(item, meta)}"
    if origin is dict or hint is dict:
        return "a mapping of names to values"
    if hint is bool:
        return "true or false"
    if hint in (int, float):
        return ("an integer" if hint is int else "a number") + bounds_text(meta)
    if hint is str:
        return "a string (quote it if YAML reads it as something else)"
    return "any value" if hint is Any else repr(hint)


def bounds_text(meta: dict) -> str:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and hi is not None:
        return f" between {lo:g} and {hi:g}"
    if lo is not None:
        return f" >= {lo:g}"
    if hi is not None:
        return f" <= {hi:g}"
    return ""


def suggest_word(hint: Any, value: Any) -> str:
    """' (did you mean 'cosine'?)' when `value` is close to one of the words a Literal accepts."""
    if not isinstance(value, str):
        return ""
    words = [w for w in literal_words(hint) if isinstance(w, str)]
    close = difflib.get_close_matches(value, words, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def literal_words(hint: Any) -> list:
    if typing.get_origin(hint) is Literal:
        return list(typing.get_args(hint))
    if is_union(hint):
        return [w for arm in typing.get_args(hint) for w in literal_words(arm)]
    return []


SHOWN = 200  # characters: the most of a value that any message shows


class _BoundedRepr(reprlib.Repr):
    """reprlib's repr, which looks at only the first items of each list and level: a value that aliases
    expand to millions of items costs no more to show than a short one."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict, self.maxset = 3, 6, 6, 4, 6
        self.maxstring = self.maxother = SHOWN
        self.maxlong = 40

    def repr_int(self, x: int, level: int) -> str:
        if x.bit_length() > 1000:  # repr() refuses integers of more than 4,300 digits
            return f"<an integer of about {int(x.bit_length() * math.log10(2)) + 1:,} digits>"
        return super().repr_int(x, level)

    def repr_str(self, x: str, level: int) -> str:
        keep = SHOWN - 10 if level == self.maxlevel else 40  # a whole value, or one string inside a list
        if len(x) <= keep:
            return repr(x)
        text = repr(x[:keep])
        return f"{text[:-1]}…{text[-1]}"  # the cut marked as everywhere else, the quotes kept


_REPR = _BoundedRepr()


def show(value: Any) -> str:
    """A value as an error message shows it: at most SHOWN characters, '…' where the rest was cut."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str) and len(value) < 40 and "e" in value.lower() and NUMBER.fullmatch(value):
        return value  # YAML read `-1e-4` as text; show it as it was written
    return clip(_REPR.repr(value))


def clip(text: str) -> str:
    """`text` cut to SHOWN characters with '…' at the cut: a message stays one readable line."""
    return text if len(text) <= SHOWN else text[:SHOWN - 1] + "…"
