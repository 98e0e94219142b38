"""Load a recipe from layered YAML files and `key=value` overrides, checked against its dataclasses.

A recipe is a YAML file or the name of a shipped one (`quick`, `fdu/resnet18`; `cifarlab recipes`
lists them). Layers: a file may say `extends: base.yaml` (or a list; paths relative to that file, else
the shipped recipe of that name, so a recipe of one's own can say `extends: fast94.yaml`).
Later layers deep-merge over earlier ones: mappings merge key by key, scalars and lists replace. An
explicit empty mapping replaces instead of merging, so `model.options={}` clears the options a
parent set (and `{}` for a whole section puts that section back to its defaults); an empty section
with nothing under it (`augment:`) changes nothing. Overrides from the command line form the last
layer. The merged mapping is then checked field by field against
the type hints and `metadata` (`min`, `max`) of `Recipe`, so a mistyped key or value stops the run
before anything starts, with a message naming the key, where it was set and what it accepts.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import os
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import yaml

from cifarlab.atomic import write_text
from cifarlab.config.fields import Mismatch, coerce, describe, is_union, show, suggest_word
from cifarlab.config.recipe import Recipe
from cifarlab.config.safe_yaml import read_mapping, yaml_value
from cifarlab.config.shipped import resolve_recipe, shipped_name, shipped_recipes
from cifarlab.config.validate import validate_recipe
from cifarlab.errors import CifarlabError

COMMAND_LINE = "command line"
_LONGEST_PATH = 4096  # PATH_MAX on Linux: no file has a longer path


# ---------------------------------------------------------------- public API


def load_recipe(path: str | os.PathLike, overrides: Iterable[str] = (), *, check_machine: bool = True) -> Recipe:
    """Read the recipe file (or shipped recipe name) `path` with its `extends` chain, apply `overrides`, validate.

    `check_machine=False` skips checking that `train.device` exists here (reading a finished run elsewhere).
    """
    merged: dict = {}
    sources: dict[str, str] = {}
    for layer_path, layer in _layers(resolve_recipe(path), ()):
        _merge(merged, layer, str(layer_path), sources)
    for override in overrides:
        _merge(merged, _override_layer(override), COMMAND_LINE, sources)
    recipe = _build(Recipe, merged, "", lambda key: _source_of(key, sources))
    validate_recipe(recipe, lambda key: _where(_source_of(key, sources)), check_machine)
    return recipe


def recipe_files(path: str | os.PathLike) -> list[Path]:
    """The files the recipe file (or shipped recipe name) `path` is built from, through its `extends`, base first."""
    return [layer_path for layer_path, _ in _layers(resolve_recipe(path), ())]


def recipe_from_dict(data: dict, source: str = "a mapping", *, check_machine: bool = True) -> Recipe:
    """Validate a plain (already merged) mapping and build the Recipe it describes."""
    recipe = _build(Recipe, data, "", lambda key: source)
    validate_recipe(recipe, lambda key: _where(source), check_machine)
    return recipe


def recipe_to_dict(recipe: Recipe) -> dict:
    """The fully resolved recipe as plain values; `recipe_from_dict` of it gives an equal Recipe."""
    return dataclasses.asdict(recipe)


def recipe_to_yaml(recipe: Recipe) -> str:
    """The fully resolved recipe as YAML that `load_recipe` reads back to an equal Recipe."""
    return yaml.dump(recipe_to_dict(recipe), Dumper=_RecipeDumper, sort_keys=False)


def save_recipe(recipe: Recipe, path: str | os.PathLike) -> None:
    """Write the resolved recipe to `path` atomically: that file alone reproduces the run."""
    write_text(path, recipe_to_yaml(recipe))


def with_overrides(data: dict, overrides: Iterable[str]) -> dict:
    """A copy of the plain recipe mapping `data` with `key=value` overrides merged over it, unchecked."""
    merged = copy.deepcopy(data)
    for override in overrides:
        _merge(merged, _override_layer(override), COMMAND_LINE, {})
    return merged


def describe_type(hint: Any, metadata: typing.Mapping) -> str:
    """What a recipe field of type `hint` accepts, in words: 'an integer >= 1', 'one of sgd, adam, ...'."""
    return describe(hint, dict(metadata))


# ---------------------------------------------------------------- files and layers


class _RecipeDumper(yaml.SafeDumper):
    """Sections as blocks, lists on one line (`betas: [0.9, 0.999]`), the way recipes are written."""


_RecipeDumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def _read_yaml(path: Path) -> dict:
    if not _exists(path):
        relative = "" if path.is_absolute() else f" (relative to {Path.cwd()})"
        raise CifarlabError(f"recipe file {show(str(path))} not found{relative}, and no shipped recipe has that name; "
                            "check the path, or see `cifarlab recipes` for the shipped ones")
    return read_mapping(path, "recipe file")


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError:  # a name too long for the file system: no such file either
        return False


def _layers(path: Path, chain: tuple[Path, ...]) -> list[tuple[Path, dict]]:
    """Every file `path` builds on, base first, then `path` itself, each without its `extends`."""
    key = path.resolve()
    if key in [p.resolve() for p in chain]:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise CifarlabError(f"recipe files extend each other in a cycle: {cycle}; remove one of these `extends`")
    data = _read_yaml(path)
    parents = data.pop("extends", None)
    if parents is None:
        parents = []
    elif isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise CifarlabError(f"`extends` in {show(str(path))} must be a file name or a list of file names, "
                            f"got {show(parents)}")
    layers = []
    for parent in parents:
        if not parent.strip() or "\0" in parent or len(parent) > _LONGEST_PATH:
            raise CifarlabError(f"`extends` in {show(str(path))} names {show(parent)}, which cannot be a file; "
                                "give the path of a recipe file or the name of a shipped recipe")
        parent_path = Path(os.path.normpath(path.parent / parent))
        if not _exists(parent_path):
            # A recipe of one's own extends a shipped one by name (`extends: fast94.yaml`, or `quick`), as
            # `cifarlab train quick` finds it; a file beside the recipe comes first.
            parent_path = shipped_recipes().get(shipped_name(parent), parent_path)
        layers += _layers(parent_path, (*chain, path))
    return layers + [(path, data)]


def _merge(base: dict, layer: dict, source: str, sources: dict[str, str], prefix: str = "") -> None:
    """Deep-merge `layer` into `base` in place, remembering which source set each key."""
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        if value == {} and isinstance(base.get(key), dict):
            base[key] = {}  # merging nothing would change nothing: an explicit `{}` means "clear it"
            _record(sources, dotted, value, source)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value, source, sources, f"{dotted}.")
        elif value is None and isinstance(base.get(key), dict):
            continue  # an empty section (`augment:` with nothing under it) changes nothing
        else:
            base[key] = copy.deepcopy(value)
            _record(sources, dotted, value, source)


def _record(sources: dict[str, str], dotted: str, value: Any, source: str) -> None:
    sources[dotted] = source
    if isinstance(value, dict):
        for key, inner in value.items():
            _record(sources, f"{dotted}.{key}", inner, source)


def _source_of(dotted: str, sources: dict[str, str]) -> str:
    while dotted:
        if dotted in sources:
            return sources[dotted]
        dotted = dotted.rpartition(".")[0]
    return "the recipe"


# ---------------------------------------------------------------- overrides


def _override_layer(override: str) -> dict:
    """`optim.lr=0.05` -> {'optim': {'lr': 0.05}}, the value read as a YAML scalar or flow sequence."""
    key, sep, text = override.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise CifarlabError(
            f"command-line override {show(override)} must have the form key=value with a dotted key, "
            "e.g. optim.lr=0.05 or model.options.dropout=0.2"
        )
    text = text.strip()
    # Not YAML: the text is kept, and the type check says what was expected.
    value = yaml_value(text, f"the command-line value of {show(key)}")
    if value is not None and not isinstance(value, str) and _is_text_field(key):
        value = text  # `data.root=2024` or `model.name=1` mean the text, not a number
    layer: dict = {}
    inner = layer
    *parents, last = key.split(".")
    for part in parents:
        inner = inner.setdefault(part, {})
    inner[last] = value
    return layer


def _is_text_field(dotted: str) -> bool:
    """Whether `dotted` names a field typed str or Optional[str] in the recipe."""
    cls: Any = Recipe
    hint: Any = None
    for part in dotted.split("."):
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            return False
        hint = typing.get_type_hints(cls).get(part)
        if hint is None:
            return False
        cls = hint
    return hint is str or (is_union(hint) and str in typing.get_args(hint))


# ---------------------------------------------------------------- checking against the dataclasses


def _build(cls: type, data: Any, prefix: str, source_of: Callable[[str], str]):
    """Check `data` against dataclass `cls` and build it; `prefix` is the dotted path of `cls`."""
    section = prefix.rstrip(".") or "the recipe"
    if data is None:
        data = {}
    elif dataclasses.is_dataclass(data) and not isinstance(data, type):
        data = dataclasses.asdict(data)  # a section's default instance
    if not isinstance(data, dict):
        raise CifarlabError(
            f"{section} must be a mapping of settings (keys: {', '.join(_names(cls))}), got {show(data)} "
            f"({_where(source_of(section))})"
        )
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in fields:
            _unknown_key(cls, str(key), prefix, source_of)
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        dotted = f"{prefix}{name}"
        raw = data[name] if name in data else _default(f)
        where = source_of(dotted) if name in data else f"the default of {cls.__name__}.{name}"
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, raw, f"{dotted}.", source_of)
            continue
        try:
            values[name] = coerce(hint, raw, f.metadata)
        except Mismatch:
            raise CifarlabError(
                f"{dotted} must be {describe(hint, f.metadata)}, got {show(raw)}"
                f"{suggest_word(hint, raw)} ({_where(where)})"
            ) from None
    return cls(**values)


def _unknown_key(cls: type, key: str, prefix: str, source_of: Callable[[str], str]) -> None:
    valid = _names(cls)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    hint = f"; did you mean '{prefix}{close[0]}'?" if close else "."
    section = f"of {prefix.rstrip('.')}" if prefix else "at the top level (besides `extends` in a file)"
    raise CifarlabError(
        f"unknown recipe key {show(prefix + key)} ({_where(source_of(prefix + key))}){hint} "
        f"Valid keys {section}: {', '.join(valid)}"
    )


def _names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls) if f.init]


def _default(f: dataclasses.Field) -> Any:
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None if f.default is dataclasses.MISSING else f.default


def _where(source: str) -> str:
    return "set on the command line" if source == COMMAND_LINE else f"set in {source}"
