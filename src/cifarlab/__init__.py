"""cifarlab: image-classification experiments on CIFAR-scale data.

    import cifarlab
    run = cifarlab.train("quick", overrides={"train.epochs": 1})
    print(run.test["top1"])

`train`, `load_run`, `evaluate`, `create_model` and `load_dataset` are imported on first use, so
`import cifarlab` stays cheap (no torch import until one is called).
"""

from __future__ import annotations

import importlib
from typing import Any

from cifarlab.errors import CifarlabError

__version__ = "0.1.0"

_LAZY = {
    "train": ("cifarlab.api", "train"),
    "evaluate": ("cifarlab.api", "evaluate"),
    "load_run": ("cifarlab.runs", "load_run"),
    "Run": ("cifarlab.runs", "Run"),
    "create_model": ("cifarlab.models", "create"),
    "list_models": ("cifarlab.models", "names"),
    "register_model": ("cifarlab.models", "register_model"),
    "load_dataset": ("cifarlab.data.sources", "load_dataset"),
    "load_recipe": ("cifarlab.config", "load_recipe"),
    "Callback": ("cifarlab.training.callbacks", "Callback"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cifarlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])


__all__ = ["CifarlabError", "__version__", *_LAZY]
