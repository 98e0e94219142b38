"""A sweep over a grid of recipe overrides, from a sweep file or the command line, with its tables.

A sweep file (configs/sweeps/*.yaml) holds

    recipe: ../fdu/base.yaml          # relative to the sweep file
    grid: {model.name: [resnet18, vgg11_bn], seed: [0, 1, 2]}
    overrides: {train.epochs: 30}     # optional: fixed for every run
    out: sweeps/my_sweep              # optional: the sweep folder
    reference: {title: paper top-1 (%), key: model.name, values: {resnet18: 95.11}}   # optional

and `cifarlab sweep RECIPE --grid key=v1,v2 ...` says the same on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from cifarlab.config.safe_yaml import read_yaml_file
from cifarlab.config.shipped import resolve_recipe, resolve_sweep_or_recipe
from cifarlab.errors import CifarlabError
from cifarlab.sweeps import MAX_RUNS
from cifarlab.sweeps.grid import as_override_text, check_run_count, grid_points, parse_axis
from cifarlab.sweeps.results import result_row, write_results
from cifarlab.sweeps.sweep import RUNS, run_points
from cifarlab.sweeps.sweep_point import Outcome

_SWEEP_KEYS = ("recipe", "grid", "overrides", "out", "reference")


@dataclass
class SweepSpec:
    """What a sweep runs: a recipe file, the grid axes, fixed overrides, and where its folder goes."""

    recipe: Path
    grid: dict[str, list[str]] = field(default_factory=dict)
    overrides: list[str] = field(default_factory=list)
    out: Optional[Path] = None
    reference: Optional[dict] = None


def is_sweep_file(path: str | Path) -> bool:
    """Whether `path` is a sweep file (it has `grid:`) rather than a recipe."""
    try:
        content = read_yaml_file(path, "sweep file")
    except CifarlabError:  # not readable as a bounded YAML file: read_sweep_file or the recipe loader says why
        return False
    return isinstance(content, dict) and "grid" in content


def read_sweep_file(path: str | Path) -> SweepSpec:
    """The SweepSpec a sweep file describes; `recipe` is relative to the file, `out` to the working folder."""
    path = Path(path)
    content = read_yaml_file(path, "sweep file")
    if not isinstance(content, dict):
        raise CifarlabError(f"sweep file {path} needs `recipe:` and a `grid:` mapping (key: [values])")
    unknown = sorted(set(content) - set(_SWEEP_KEYS))
    if unknown or "recipe" not in content or not isinstance(content.get("grid"), dict):
        raise CifarlabError(f"sweep file {path} needs `recipe:` and a `grid:` mapping (key: [values]) and knows only "
                            f"{', '.join(_SWEEP_KEYS)}; fix {', '.join(unknown) or 'recipe/grid'}")
    grid = {str(k): [as_override_text(v) for v in (values if isinstance(values, list) else [values])]
            for k, values in content["grid"].items()}
    empty = [key for key, values in grid.items() if not values]
    if empty:
        raise CifarlabError(f"sweep file {path}: grid axis {', '.join(empty)} lists no values; give at least one "
                            f"(e.g. {empty[0]}: [0, 1]) or remove the axis")
    overrides = [f"{k}={as_override_text(v)}" for k, v in (content.get("overrides") or {}).items()]
    out = content.get("out")
    # The recipe: a path relative to the sweep file, else a shipped name (`recipe: fdu/base`).
    beside = path.parent / str(content["recipe"])
    try:
        recipe = beside if beside.is_file() else resolve_recipe(str(content["recipe"]))
    except CifarlabError:
        raise CifarlabError(f"sweep file {path}: recipe {content['recipe']!r} is neither a file ({beside}) nor a "
                            "shipped recipe; fix `recipe:` (a path relative to the sweep file, or a name from "
                            "`cifarlab recipes`)") from None
    return SweepSpec(recipe=recipe, grid=grid, overrides=overrides,
                     out=(Path(out) if out else None), reference=content.get("reference"))


def sweep_spec(path: str | Path, grid_words: list[str] = (), overrides: list[str] = ()) -> SweepSpec:
    """A sweep from a sweep file or a recipe (a file, or a shipped name), with command-line axes (`key=v1,v2`)
    and overrides on top."""
    path = resolve_sweep_or_recipe(path)
    spec = read_sweep_file(path) if is_sweep_file(path) else SweepSpec(recipe=path)
    for word in grid_words:
        key, values = parse_axis(word)
        spec.grid[key] = values  # the command line wins over the file
    spec.overrides = list(spec.overrides) + list(overrides)
    return spec


def run_sweep(spec: SweepSpec, out: Path, jobs: int = 1, launcher: str = "local", slurm: Optional[dict] = None,
              max_runs: int = MAX_RUNS) -> list[Outcome]:
    """Run the sweep into `out` (runs/<name> per point) and write results.csv, summary.md and summary.csv.

    The tables are rewritten after every finished run, so a stopped sweep still shows what it has. A grid
    of more than `max_runs` runs is refused before any recipe is resolved.
    """
    out = Path(out)
    check_run_count(spec.grid, max_runs)
    points = grid_points(spec.recipe, spec.grid, spec.overrides)
    finished: dict[str, dict] = {}
    order = [p.name for p in points]

    def record(outcome: Outcome) -> None:
        if outcome.status == "finished":
            finished[outcome.point.name] = result_row(outcome, out)
            write_results(out, [finished[n] for n in order if n in finished], spec.reference)

    return run_points(points, out / RUNS, jobs=jobs, launcher=launcher, on_done=record, slurm=slurm)
