"""The points of a sweep: the product of a grid of `key=value` overrides, each with a readable run name.

A grid axis is written `key=v1,v2,v3` (commas inside [...] or {...} belong to the value), or in a
sweep file as `key: [v1, v2, v3]`. An axis with one value is a fixed override: only axes with several
values set runs apart and appear in run names (`model.name=lenet,vgg11_bn seed=0,1` gives
lenet_seed0, lenet_seed1, vgg11_bn_seed0, vgg11_bn_seed1).
"""

from __future__ import annotations

import itertools
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from cifarlab.config import load_recipe
from cifarlab.config.recipe import Recipe
from cifarlab.errors import CifarlabError
from cifarlab.models.catalogue import check_options
from cifarlab.sweeps import MAX_RUNS

# Keys that say where a run goes: the sweep decides those.
_RESERVED = ("name", "out_dir")
# Keys whose value alone names a run (`resnet18`, not `nameresnet18`).
_VALUE_ONLY = ("name", "dataset", "weights")


@dataclass
class Point:
    """One run of a sweep: its run-folder name, the grid values that set it apart, and its resolved recipe."""

    name: str
    values: dict[str, str]  # varied key -> value as written
    recipe: Recipe
    extra: dict = field(default_factory=dict)  # columns a caller adds to its rows (few-shot: weights, shots)


def split_values(text: str) -> list[str]:
    """`a,b,[1, 2]` -> ['a', 'b', '[1, 2]']: commas split values except inside brackets or braces."""
    values, depth, current = [], 0, ""
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        if char == "," and depth == 0:
            values.append(current.strip())
            current = ""
        else:
            current += char
    values.append(current.strip())
    return values


def parse_axis(word: str) -> tuple[str, list[str]]:
    """`model.name=resnet18,vgg11_bn` -> ('model.name', ['resnet18', 'vgg11_bn'])."""
    key, sep, text = word.partition("=")
    values = split_values(text) if sep else []
    if not key.strip() or not values or any(not v for v in values):
        raise CifarlabError(f"grid axis {word!r} must read key=value1,value2,..., e.g. model.name=resnet18,vgg11_bn seed=0,1,2")
    return key.strip(), values


def as_override_text(value) -> str:
    """A value from a sweep file as the text of a `key=value` override (lists and numbers as YAML/JSON)."""
    return value if isinstance(value, str) else json.dumps(value)


def _label(key: str, value: str, with_key: bool) -> str:
    last = key.split(".")[-1]
    text = value if (last in _VALUE_ONLY and not with_key) else f"{last}{value}"
    return re.sub(r"[^A-Za-z0-9_.+=-]+", "-", text).strip("-") or last


def run_names(combinations: list[dict[str, str]]) -> list[str]:
    """A readable, distinct folder name per combination of varied values."""
    for with_key in (False, True):
        names = ["_".join(_label(k, v, with_key) for k, v in combo.items()) for combo in combinations]
        if len(set(names)) == len(names):
            return names
    # Values that differ only in characters a folder name cannot hold: number them.
    return [f"{name}_{index}" for index, name in enumerate(names)]


def count_runs(grid: dict[str, list[str]]) -> int:
    """How many runs the grid makes (the product of its axes' lengths), without building any of them."""
    return math.prod(len(values) for values in grid.values())


def check_run_count(grid: dict[str, list[str]], max_runs: int = MAX_RUNS) -> int:
    """The grid's run count, refused above `max_runs` with the axes that make it so many."""
    count = count_runs(grid)
    axes = " x ".join(f"{len(values):,} {key}" for key, values in grid.items() if len(values) > 1)
    refuse_too_many_runs(count, max_runs, f"this sweep would make {count:,} runs ({axes})", "narrow the grid")
    return count


def refuse_too_many_runs(count: int, max_runs: int, planned: str, remedy: str) -> None:
    """One error when a command would make more than `max_runs` runs (a sweep's grid, a study's trials)."""
    if count > max_runs:
        raise CifarlabError(f"{planned}, more than the {max_runs:,} allowed; {remedy}, "
                            f"or pass --max-runs {count} if you mean it")


def grid_points(recipe_path: str | Path, grid: dict[str, list[str]], overrides: list[str] = ()) -> list[Point]:
    """Every combination of the grid's values on top of the recipe and the fixed overrides, resolved and checked.

    Each point's recipe is named after its run folder; a mistyped key or value fails here, before any run starts.
    """
    for key in grid:
        if key in _RESERVED:
            raise CifarlabError(f"a sweep names and places its runs itself; drop {key!r} from the grid "
                                "(the run folders are <sweep>/runs/<varied values>)")
    fixed = list(overrides) + [f"{k}={v[0]}" for k, v in grid.items() if len(v) == 1]
    # Seeds vary last, so the runs of one setting sit together and names end in _seedN.
    varied = dict(sorted(((k, v) for k, v in grid.items() if len(v) > 1), key=lambda item: item[0] == "seed"))
    combinations = [dict(zip(varied, values)) for values in itertools.product(*varied.values())]
    base_name = load_recipe(recipe_path, fixed).name
    names = run_names(combinations) if varied else [base_name]
    points = []
    for name, combo in zip(names, combinations):
        recipe = load_recipe(recipe_path, fixed + [f"{k}={v}" for k, v in combo.items()])
        try:  # a model axis with the recipe's options of another model: said before any run starts
            check_options(recipe.model.name, dict(recipe.model.options))
        except CifarlabError as exc:
            raise CifarlabError(f"sweep point {name}: {exc}") from None
        points.append(Point(name=name, values=combo, recipe=replace(recipe, name=name)))
    return points
