"""The model catalogue: every family loaded, names, `create` with its option check and input config.

Built on the registry store (`cifarlab.models.registry`), which the family modules fill as they are imported.
"""

from __future__ import annotations

import difflib
import inspect
import os
from collections.abc import Callable
from typing import Any

from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.models.input_config import CIFAR_INPUT_SIZE, InputConfig
from cifarlab.models.portable import is_portable_file, load_portable_weights, read_header
from cifarlab.models.registry import is_prefixed, registered, resolve_prefixed


def _load_families() -> None:
    # Importing the family modules fills the registry; done on first use to keep `import cifarlab.models` cheap.
    from cifarlab.models import zoo  # noqa: F401


def names() -> list[str]:
    """Every registered model name, sorted."""
    _load_families()
    return sorted(registered())


def constructor_of(name: str) -> Callable[..., nn.Module]:
    """The constructor registered as `name`; an unknown name is an error listing the closest names."""
    _load_families()
    if is_prefixed(name):
        return resolve_prefixed(name)
    models = registered()
    if name not in models:
        close = difflib.get_close_matches(name, models, n=5, cutoff=0.5)
        hint = f" Closest: {', '.join(close)}." if close else ""
        raise CifarlabError(f"unknown model {name!r}.{hint} Run `cifarlab models` to list every model.")
    return models[name]


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
    prefixed = name is not None and is_prefixed(name)
    if weights is not None and is_portable_file(weights) and not prefixed:
        return _from_portable(weights, name, num_classes, options)
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


def _from_portable(path: str | os.PathLike, name: str | None, num_classes: int | None, options: dict[str, Any]) -> nn.Module:
    """Build the model a portable file (`cifarlab export`) describes and load its weights.

    `name` and `num_classes`, when given, must match the file; `options` override the
    file's constructor options (dropout, say), and a change of shape is refused.
    """
    header = read_header(path)
    if (name is not None and name != header.model) or (num_classes is not None and num_classes != header.num_classes):
        asked = f"{name or header.model} with {num_classes or header.num_classes} classes"
        raise CifarlabError(
            f"weights file {path} holds {header.model} with {header.num_classes} classes, not {asked}; "
            f"create({header.model!r}, num_classes={header.num_classes}, weights=...) or leave name and num_classes out"
        )
    model = create(header.model, header.num_classes, **{**header.options, **options})
    return load_portable_weights(model, path, header, options)


def check_options(name: str, options: dict[str, Any]) -> None:
    """Refuse options model `name` has no parameter for, without building it (a sweep checks every point so)."""
    if not is_prefixed(name):  # a catalogue prefix (timm/...) checks its options when the model is built
        _check_options(name, constructor_of(name), options)


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
