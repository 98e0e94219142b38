"""The search space of a tune file: ranges and categorical lists of recipe keys, and their Optuna distributions.

    space:
      optim.lr: {low: 0.01, high: 1.0, log: true}       # a float range, sampled on a log scale
      train.epochs: {low: 4, high: 12, step: 2}        # with a step: only low, low + step, ...
      train.batch_size: [64, 128]                      # a categorical list
      model.options.width: {low: 16, high: 64, int: true}

Ranges are inclusive. This module checks the shape of each entry; `space_check` checks the keys and
values against the recipe.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

from cifarlab.errors import CifarlabError

_RANGE_KEYS = ("low", "high", "log", "step", "int")
_CHOICE_TYPES = (str, int, float, bool, type(None))  # what Optuna stores as a categorical value


@dataclass(frozen=True)
class Dimension:
    """One searched recipe key: a range (low, high, log, step, integer) or a list of choices."""

    key: str
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    step: Optional[float] = None
    integer: bool = False
    choices: Optional[tuple] = None

    @property
    def is_categorical(self) -> bool:
        return self.choices is not None

    def probe_values(self) -> list:
        """The values that show whether the recipe takes this dimension: every choice, or both ends of the range."""
        return list(self.choices) if self.is_categorical else [self.low, self.high]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["choices"] = None if self.choices is None else list(self.choices)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Dimension:
        choices = data.get("choices")
        return cls(**{**data, "choices": None if choices is None else tuple(choices)})


def parse_space(raw: Any, source: str, integer_keys: frozenset = frozenset()) -> list[Dimension]:
    """The dimensions a tune file's `space:` mapping describes; `integer_keys` are recipe keys typed int
    (their ranges are integer ranges unless the entry says `int: false`)."""
    if not isinstance(raw, dict) or not raw:
        raise CifarlabError(f"{source}: `space:` must map recipe keys to a range or a list, e.g. "
                            "space: {optim.lr: {low: 0.01, high: 1.0, log: true}, train.batch_size: [64, 128]}")
    return [_dimension(str(key), value, source, str(key) in integer_keys) for key, value in raw.items()]


def _dimension(key: str, entry: Any, source: str, integer_key: bool) -> Dimension:
    where = f"{source}, space key {key}"
    if isinstance(entry, list):
        if not entry:
            raise CifarlabError(f"{where}: the list of values is empty; give at least one value, e.g. {key}: [a, b]")
        odd = [value for value in entry if not isinstance(value, _CHOICE_TYPES)]
        if odd:
            raise CifarlabError(f"{where}: a categorical value must be a number, a word, true/false or null, got "
                                f"{odd[0]!r}; search a list-valued key by fixing it in `overrides:` per study")
        return Dimension(key, choices=tuple(entry))
    if not isinstance(entry, dict):
        raise CifarlabError(f"{where}: give a range {{low: ..., high: ...}} or a list of values, got {entry!r}")
    unknown = sorted(set(entry) - set(_RANGE_KEYS))
    if unknown or "low" not in entry or "high" not in entry:
        raise CifarlabError(f"{where}: a range needs low and high and may have log, step and int "
                            f"(got {', '.join(map(str, entry))})")
    return _range(key, entry, where, integer_key)


def _range(key: str, entry: dict, where: str, integer_key: bool) -> Dimension:
    low, high, step = entry["low"], entry["high"], entry.get("step")
    for name, value in (("low", low), ("high", high), ("step", step)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
            raise CifarlabError(f"{where}: {name} must be a finite number, got {value!r}")
    log, integer = entry.get("log", False), entry.get("int", integer_key)
    if not isinstance(log, bool) or not isinstance(integer, bool):
        raise CifarlabError(f"{where}: log and int are true or false")
    if low == high:
        raise CifarlabError(f"{where}: the range {low}..{high} is empty; make high larger than low, or fix the "
                            f"value in `overrides:` ({key}: {low})")
    if low > high:
        raise CifarlabError(f"{where}: the range is reversed (low {low} > high {high}); swap them")
    if log and low <= 0:
        raise CifarlabError(f"{where}: a log range needs low > 0 (got {low}); e.g. low: 1.0e-4")
    if step is not None and (step <= 0 or log):
        raise CifarlabError(f"{where}: step must be > 0 and cannot go with log: true (got step {step}, log {log})")
    if integer and not all(float(v).is_integer() for v in (low, high, step or 1)):
        raise CifarlabError(f"{where}: an integer range needs whole numbers for low, high and step; "
                            "write int: false for a float range")
    if integer:
        low, high, step = int(low), int(high), None if step is None else int(step)
    return Dimension(key, low=low, high=high, log=log, step=step, integer=integer)


def distributions(space: list[Dimension]) -> dict:
    """Optuna distribution per key, in space order."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    found = {}
    for dim in space:
        if dim.is_categorical:
            found[dim.key] = CategoricalDistribution(list(dim.choices))
        elif dim.integer:
            found[dim.key] = IntDistribution(dim.low, dim.high, log=dim.log, step=dim.step or 1)
        else:
            found[dim.key] = FloatDistribution(dim.low, dim.high, log=dim.log, step=dim.step)
    return found


def grid_values(space: list[Dimension], source: str) -> dict[str, list]:
    """Every value of each dimension, for the grid sampler: choices, or a stepped range walked end to end."""
    grid = {}
    for dim in space:
        if dim.is_categorical:
            grid[dim.key] = list(dim.choices)
        elif dim.integer and not dim.log:
            grid[dim.key] = list(range(dim.low, dim.high + 1, dim.step or 1))
        elif dim.step is not None:
            count = int(math.floor((dim.high - dim.low) / dim.step + 1e-9)) + 1
            grid[dim.key] = [round(dim.low + index * dim.step, 12) for index in range(count)]
        else:
            raise CifarlabError(f"{source}: the grid sampler needs a value list or a stepped range for {dim.key}; "
                                f"give it a step ({dim.key}: {{low: {dim.low}, high: {dim.high}, step: ...}}) "
                                "or use sampler: tpe or random")
    return grid


def grid_size(grid: dict[str, list]) -> int:
    return math.prod(len(values) for values in grid.values())
