"""Optuna is an optional extra: one place imports it and says how to install it when it is missing."""

from __future__ import annotations

from types import ModuleType

from cifarlab.errors import CifarlabError

INSTALL = "pip install 'cifarlab[tune]'"


def import_optuna() -> ModuleType:
    """The optuna module, quiet (cifarlab prints one line per trial itself); CifarlabError when it is not installed."""
    try:
        import optuna
    except ImportError:
        raise CifarlabError(f"`cifarlab tune` needs Optuna: {INSTALL}") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna
