"""The recipes that ship inside the package, named by their path under it: `quick`, `fdu/resnet18`.

A checkout reaches the same files as `configs/...` (a link to the package's `recipes` folder), so
`cifarlab train configs/quick.yaml` and `cifarlab train quick` load one file. An installed
package has no `configs/` folder beside it: a `configs/...` path that does not exist falls back to
the shipped recipe of that name, so commands copied from the README work there too.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Optional

from cifarlab.config.fields import show
from cifarlab.config.safe_yaml import load_yaml_text
from cifarlab.errors import CifarlabError

RECIPES_DIR = Path(__file__).resolve().parents[1] / "recipes"
_SUFFIXES = (".yaml", ".yml")
_CHECKOUT_PREFIX = "configs/"
SWEEPS_FOLDER = "sweeps"  # sweep files (`recipe:` + `grid:`) ship beside the recipes but are not recipes
STUDIES_FOLDER = "studies"  # study files (`recipe:` + `variants:`), and the recipes only a study runs
TUNES_FOLDER = "tunes"  # tune files (`recipe:` + `space:`, `cifarlab tune`) ship beside the recipes but are not recipes


def shipped_recipes() -> dict[str, Path]:
    """Every shipped recipe by name (its path under the recipes folder, no suffix), sorted by name."""
    files = [p for p in RECIPES_DIR.rglob("*") if p.suffix in _SUFFIXES and p.is_file()
             and p.relative_to(RECIPES_DIR).parts[0] not in (SWEEPS_FOLDER, TUNES_FOLDER)
             and STUDIES_FOLDER not in p.relative_to(RECIPES_DIR).parts[:-1]]
    return {_name_of(p): p for p in sorted(files, key=_name_of)}


def resolve_recipe(name_or_path: str | os.PathLike) -> Path:
    """The recipe file meant by `name_or_path`: an existing file, else the shipped recipe of that name."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_recipes()
    name = shipped_name(str(name_or_path))
    if name in shipped:
        return shipped[name]
    close = difflib.get_close_matches(name, shipped, n=3, cutoff=0.5)
    closest = f"; closest: {', '.join(close)}" if close else ""
    relative = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
    raise CifarlabError(
        f"recipe {show(str(name_or_path))} is neither a file{relative} nor a shipped recipe{closest}; "
        "`cifarlab recipes` lists the shipped ones, or give the path of a YAML file"
    )


def shipped_file(name_or_path: str | os.PathLike) -> Optional[Path]:
    """The file under the shipped recipes folder that a name means (`sweeps/fdu_zoo`,
    `configs/fdu/studies/loss_cpu.yaml`), sweep and study files included; None when there is none."""
    path = RECIPES_DIR / f"{shipped_name(str(name_or_path))}.yaml"
    return path if path.is_file() else None


def resolve_sweep_or_recipe(name_or_path: str | os.PathLike) -> Path:
    """What `cifarlab sweep` is given: an existing file (a sweep file or a recipe), else the shipped sweep
    file of that name (`sweeps/fdu_zoo`), else the shipped recipe (`quick`), as `cifarlab train` finds it."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    sweep = shipped_file(name_or_path)
    if sweep is not None and sweep.is_relative_to(RECIPES_DIR / SWEEPS_FOLDER):
        return sweep
    return resolve_recipe(name_or_path)


def recipe_description(path: str | os.PathLike) -> str:
    """One line about a recipe file: its `description:` key, else its first comment line."""
    text = Path(path).read_text()
    try:
        data = load_yaml_text(text, f"recipe file {show(str(path))}")
    except CifarlabError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("description"), str) and data["description"].strip():
        return " ".join(data["description"].split())
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return ""


def _name_of(path: Path) -> str:
    return path.relative_to(RECIPES_DIR).with_suffix("").as_posix()


def shipped_name(given: str) -> str:
    """`configs/fdu/resnet18.yaml`, `fdu/resnet18.yaml` and `fdu/resnet18` all name `fdu/resnet18`."""
    name = given.replace(os.sep, "/").strip()
    if name.startswith("./"):
        name = name[2:]
    if name.startswith(_CHECKOUT_PREFIX):
        name = name[len(_CHECKOUT_PREFIX):]
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
