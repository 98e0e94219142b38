"""One registry, name -> constructor, for every model cifarlab can build."""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable
from typing import Any

from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.models.input_config import CIFAR_INPUT_SIZE, InputConfig
from cifarlab.models.portable import is_portable_file, load_portable

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


def _load_families() -> None:
    # Importing the family modules fills the registry; done lazily to keep `import cifarlab` cheap.
    from cifarlab.models import zoo  # noqa: F401


def names() -> list[str]:
    """Every registered model name, sorted."""
    _load_families()
    return sorted(_MODELS)


def constructor_of(name: str) -> Callable[..., nn.Module]:
    """The constructor registered as `name`; an unknown name is an error listing the closest names."""
    _load_families()
    for prefix, resolve in _PREFIXES.items():
        if name.startswith(prefix):
            return resolve(name[len(prefix):])
    if name not in _MODELS:
        close = difflib.get_close_matches(name, _MODELS, n=5, cutoff=0.5)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise CifarlabError(f"unknown model {name!r}.{hint} Run `cifarlab models` to list every model.")
    return _MODELS[name]


def create(
    name: str | None = None,
    num_classes: int | None = None,
    weights: str | os.PathLike | None = None,
    **options: Any,
) -> nn.Module:
    """Build the model registered as `name` with `num_classes` outputs (default 10), loading `weights`.

    `weights` is an official BiT name (`BiT-M-R50x1`), a BiT `.npz` file, or a `.safetensors`
    file written by `cifarlab export`; for such a file `name`, `num_classes` and the options
    may be left out (they are read from it). The model carries `model.input_config`.
    """
    # A prefixed name (`timm/resnet50`) loads any .safetensors state dict itself, with its own head.
    _load_families()
    prefixed = name is not None and name.startswith(tuple(_PREFIXES))
    if weights is not None and is_portable_file(weights) and not prefixed:
        return load_portable(weights, name, num_classes, options)
    if name is None:
        raise CifarlabError(
            "create() needs a model name unless weights is a .safetensors file written by `cifarlab export`; "
            "pass a name from `cifarlab models`."
        )
    build = constructor_of(name)
    _check_options(name, build, options)
    if weights is not None:
        options["weights"] = str(weights)
    try:
        model = build(num_classes=10 if num_classes is None else num_classes, **options)
    except TypeError as exc:
        if weights is not None and "weights" in str(exc):
            raise CifarlabError(
                f"model {name!r} has no pretrained weights of its own; weights must be a .safetensors file "
                f"written by `cifarlab export` (got {str(weights)!r})."
            ) from exc
        raise CifarlabError(f"model {name!r} does not accept these options {sorted(options)}: {exc}; drop the one "
                            "it names from the recipe, or clear them all with model.options={}") from exc
    return with_input_config(model, None if weights is None else str(weights))


def _check_options(name: str, build: Callable[..., nn.Module], options: dict[str, Any]) -> None:
    """Name the options `build` has no parameter for (a recipe's options kept after model.name changed)."""
    try:
        parameters = inspect.signature(build).parameters
    except (TypeError, ValueError):  # no signature to read: the constructor itself will say
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = sorted(k for k, p in parameters.items()
                      if k not in ("num_classes", "weights") and p.kind is not inspect.Parameter.VAR_POSITIONAL)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise CifarlabError(
            f"model {name!r} has no option {', '.join(unknown)} (its options: {', '.join(accepted) or 'none'}); "
            f"drop {' '.join(f'model.options.{k}' for k in unknown)} from the recipe, or clear them all with "
            "model.options={}"
        )


def with_input_config(model: nn.Module, weights: str | None) -> nn.Module:
    """Give `model` its `input_config` (its own default, or one from its input size), recording `weights`."""
    config = getattr(model, "input_config", None)
    if not isinstance(config, InputConfig):
        config = InputConfig(input_size=tuple(getattr(model, "input_size", CIFAR_INPUT_SIZE)))
    model.input_config = config.with_weights(weights)
    return model
