"""The registry store: name -> constructor, filled by each family module as it is imported.

A plain store that imports no family; `cifarlab.models.catalogue` loads the families and builds models."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from cifarlab.errors import CifarlabError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
# Name prefixes that stand for a whole outside catalogue (`timm/resnet50`): prefix -> (rest of name -> constructor).
_PREFIXES: dict[str, Callable[[str], Callable[..., nn.Module]]] = {}


def _origin(fn: Callable) -> str:
    return f"{fn.__module__}.{fn.__qualname__}"


def register_model(fn: Callable[..., nn.Module] | None = None, *, name: str | None = None):
    """Decorator: register a constructor `fn(num_classes=..., **options) -> nn.Module` under its name.

    Registering the same code again (a re-run notebook cell, `importlib.reload`) replaces the
    entry; another function under a taken name is an error naming both.
    """

    def wrap(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or f.__name__
        taken = _MODELS.get(key)
        if taken is not None and _origin(taken) != _origin(f):
            raise CifarlabError(
                f"model name {key!r} is taken by {_origin(taken)}; {_origin(f)} cannot register it too: "
                f"give one of them another name with register_model(name=...)."
            )
        _MODELS[key] = f
        return f

    return wrap(fn) if fn is not None else wrap


def register_variant(name: str, build: Callable[..., nn.Module], doc: str, **fixed: Any) -> None:
    """Register `name` as `build(num_classes=..., **fixed, **options)`: one family, one size of it."""

    def constructor(num_classes: int = 10, **options: Any) -> nn.Module:
        return build(num_classes=num_classes, **fixed, **options)

    constructor.__name__ = constructor.__qualname__ = name
    constructor.__module__ = build.__module__
    constructor.__doc__ = doc
    register_model(constructor)


def register_prefix(prefix: str, resolve: Callable[[str], Callable[..., nn.Module]]) -> None:
    """Resolve every name starting with `prefix` by `resolve(rest_of_name)`, which returns a constructor."""
    _PREFIXES[prefix] = resolve


def registered() -> dict[str, Callable[..., nn.Module]]:
    """The constructors registered so far, by name (families not yet imported are absent)."""
    return dict(_MODELS)


def is_prefixed(name: str) -> bool:
    """Whether `name` starts with a catalogue prefix (`timm/resnet50`)."""
    return name.startswith(tuple(_PREFIXES))


def resolve_prefixed(name: str) -> Callable[..., nn.Module]:
    """The constructor of a prefixed name, from its catalogue's resolver (call only when `is_prefixed(name)`)."""
    prefix = next(prefix for prefix in _PREFIXES if name.startswith(prefix))
    return _PREFIXES[prefix](name[len(prefix):])
