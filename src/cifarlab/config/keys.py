"""Every recipe key with its type, default and help, dotted (`optim.lr`): what `cifarlab keys` prints."""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass

import yaml

from cifarlab.config.loader import describe_type
from cifarlab.config.recipe import Recipe
from cifarlab.errors import CifarlabError

_QUOTE_NOTE = " (quote it if YAML reads it as something else)"  # right in an error message, noise in a table


@dataclass(frozen=True)
class RecipeKey:
    """One settable recipe key: dotted name, what it accepts in words, default as YAML, help line."""

    name: str
    accepts: str
    default: str
    help: str


def recipe_keys(section: str | None = None) -> list[RecipeKey]:
    """The keys of the whole recipe, of one section (`optim`) or one key (`optim.lr`), in declaration order."""
    keys = list(_walk(Recipe, ""))
    if section is None:
        return keys
    sections = [f.name for f in dataclasses.fields(Recipe) if dataclasses.is_dataclass(_hints(Recipe)[f.name])]
    prefix = section.rstrip(".") + "."
    chosen = [k for k in keys if k.name == section or k.name.startswith(prefix)]
    if not chosen:
        close = difflib.get_close_matches(section, sections, n=1, cutoff=0.5)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise CifarlabError(f"no recipe section or key '{section}'{hint} Give one of the sections: "
                            f"{', '.join(sections)} (or nothing, for every key)")
    return chosen


def _walk(cls: type, prefix: str):
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        hint = hints[f.name]
        if dataclasses.is_dataclass(hint):
            yield from _walk(hint, f"{prefix}{f.name}.")
            continue
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        accepts = describe_type(hint, f.metadata).replace(_QUOTE_NOTE, "")
        yield RecipeKey(f"{prefix}{f.name}", accepts, _as_yaml(default),
                        f.metadata.get("help", ""))


def _hints(cls: type) -> dict:
    return typing.get_type_hints(cls)


def _as_yaml(value) -> str:
    """A default the way it is written in a recipe or an override: null, true, [0.9, 0.999], {}."""
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip().removesuffix("...").strip()
