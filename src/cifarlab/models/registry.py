"""One registry, name -> constructor, for every model cifarlab can build."""

from __future__ import annotations

import difflib
from typing import Callable

from torch import nn

from cifarlab.errors import CifarlabError

_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module] | None = None, *, name: str | None = None):
    """Decorator: register a constructor `fn(num_classes=..., **options) -> nn.Module` under its name."""

    def wrap(f: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or f.__name__
        if key in _MODELS:
            raise ValueError(f"model {key!r} registered twice")
        _MODELS[key] = f
        return f

    return wrap(fn) if fn is not None else wrap


def _load_families() -> None:
    # Importing the family modules fills the registry; done lazily to keep `import cifarlab` cheap.
    from cifarlab.models import zoo  # noqa: F401


def names() -> list[str]:
    """Every registered model name, sorted."""
    _load_families()
    return sorted(_MODELS)


def create(name: str, num_classes: int = 10, **options) -> nn.Module:
    """Build the model registered as `name`; an unknown name is an error listing the closest names."""
    _load_families()
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=5, cutoff=0.5)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise CifarlabError(
            f"unknown model {name!r}.{hint} Run `cifarlab models` to list every model."
        )
    try:
        return _MODELS[name](num_classes=num_classes, **options)
    except TypeError as exc:
        raise CifarlabError(f"model {name!r} does not accept these options {sorted(options)}: {exc}") from exc
