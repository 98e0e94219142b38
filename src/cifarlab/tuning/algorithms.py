"""The sampler that proposes each trial's values and the pruner that stops poor trials early, by name.

    sampler: tpe                          # or {name: tpe, seed: 0, n_startup_trials: 5}; random; grid
    pruner: median                        # or {name: median, n_startup_trials: 2, n_warmup_steps: 0};
                                          # asha (= successive_halving); none

Keys besides `name` go to the Optuna class as they are (TPESampler, RandomSampler, GridSampler,
MedianPruner, SuccessiveHalvingPruner), so everything Optuna documents for them can be set.
"""

from __future__ import annotations

from typing import Any

from cifarlab.errors import CifarlabError
from cifarlab.tuning.space import Dimension, grid_values

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("median", "asha", "successive_halving", "none")
DEFAULT_SAMPLER = "tpe"
DEFAULT_PRUNER = "median"
# Workers of one study each get their own seed, else seeded samplers would all propose the same values.
WORKER_SEED_STRIDE = 1000


def algorithm_setting(raw: Any, kind: str, names: tuple, default: str, source: str) -> dict:
    """A `sampler:` or `pruner:` entry (a name, or a mapping with `name:` and Optuna's arguments) as a mapping."""
    setting = {"name": default} if raw is None else {"name": raw} if isinstance(raw, str) else raw
    if not isinstance(setting, dict) or "name" not in setting:
        raise CifarlabError(f"{source}: `{kind}:` is a name ({', '.join(names)}) or a mapping with `name:`, got {raw!r}")
    if setting["name"] not in names:
        raise CifarlabError(f"{source}: unknown {kind} {setting['name']!r}; use one of {', '.join(names)}")
    return dict(setting)


def build_sampler(setting: dict, space: list[Dimension], source: str, seed_offset: int = 0):
    """The Optuna sampler `setting` names; a given seed is moved by `seed_offset` (per worker, per restart)."""
    import optuna

    arguments = {k: v for k, v in setting.items() if k != "name"}
    if arguments.get("seed") is not None:
        arguments["seed"] = int(arguments["seed"]) + seed_offset
    name = setting["name"]
    try:
        if name == "grid":
            return optuna.samplers.GridSampler(grid_values(space, source), **arguments)
        sampler = optuna.samplers.TPESampler if name == "tpe" else optuna.samplers.RandomSampler
        return sampler(**arguments)
    except (TypeError, ValueError) as exc:
        raise CifarlabError(f"{source}: sampler {name} does not take {sorted(arguments)}: {exc}") from None


def build_pruner(setting: dict, source: str):
    """The Optuna pruner `setting` names (asha and successive_halving are Optuna's asynchronous successive halving)."""
    import optuna

    arguments = {k: v for k, v in setting.items() if k != "name"}
    classes = {"median": optuna.pruners.MedianPruner, "asha": optuna.pruners.SuccessiveHalvingPruner,
               "successive_halving": optuna.pruners.SuccessiveHalvingPruner, "none": optuna.pruners.NopPruner}
    try:
        return classes[setting["name"]](**arguments)
    except (TypeError, ValueError) as exc:
        raise CifarlabError(f"{source}: pruner {setting['name']} does not take {sorted(arguments)}: {exc}") from None
