"""One trial: the recipe with the trial's values, trained as an ordinary run in STUDY_DIR/trials/NNNN.

The trial's value is its run's final validation score (eval_val.json of the checkpoint the run
selected), the number `cifarlab report` shows for that run. Trials never evaluate the test set
(eval.test=false): the test split stays unseen while values are chosen; the retrain command each
trial records (`cifarlab train RECIPE key=value ...`) trains the chosen point with its test score.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Optional, TextIO

from cifarlab.errors import CifarlabError
from cifarlab.runs import read_evaluations
from cifarlab.tuning.pruning import RUN_DIR, PruningCallback
from cifarlab.tuning.space_check import load_trial_recipe, override_word
from cifarlab.tuning.storage import TRIALS
from cifarlab.tuning.tune_file import TuneSpec

NO_TEST = "eval.test=false"
COMMAND, ERROR, DIVERGED = "command", "error", "diverged"  # trial user attributes


@dataclass
class TrialOutcome:
    """How a trial ended: complete (with its value), pruned, failed (with the message) or stopped (Ctrl-C, SIGTERM)."""

    state: str
    value: Optional[float] = None
    run_dir: Optional[Path] = None
    message: str = ""
    exit_code: Optional[int] = None


def trial_overrides(spec: TuneSpec, params: dict) -> list[str]:
    """The trial's values as `key=value` overrides, in space order."""
    return [override_word(dim.key, params[dim.key]) for dim in spec.space]


def retrain_command(spec: TuneSpec, params: dict) -> str:
    """The `cifarlab train` command line that trains this trial's point again (with its test evaluation)."""
    return shlex.join(["cifarlab", "train", spec.recipe_label, *spec.overrides, *trial_overrides(spec, params)])


def trial_folder_name(number: int) -> str:
    return f"{number:04d}"


def run_trial(spec: TuneSpec, study_dir: Path, trial, progress_stream: Optional[TextIO] = None) -> TrialOutcome:
    """Train the trial's point; report each validated epoch to the pruner. KeyboardInterrupt passes through."""
    from cifarlab.runner.run import run_recipe  # the training stack, only when a trial trains

    recipe = load_trial_recipe(spec.recipe, [*spec.overrides, NO_TEST], trial.params)
    recipe = replace(recipe, name=trial_folder_name(trial.number), out_dir=str(Path(study_dir) / TRIALS))
    command = retrain_command(spec, trial.params)
    trial.set_user_attr(COMMAND, command)
    pruning = PruningCallback(trial, spec.objective.epoch_key, command, study_dir)
    try:
        result = run_recipe(recipe, progress_stream=progress_stream, callbacks=[pruning])
    except CifarlabError as exc:
        if pruning.trainer is not None and not Path(pruning.trainer.run_dir).is_dir():
            trial.set_user_attr(RUN_DIR, None)  # failed before its first checkpoint: the run removed its folder
        if pruning.diverged():
            # A rate that blows the loss up is a poor point, not a broken study: the sampler learns from it.
            trial.set_user_attr(DIVERGED, str(exc))
            return TrialOutcome("pruned", message=f"diverged: {exc}")
        trial.set_user_attr(ERROR, str(exc))
        return TrialOutcome("failed", message=str(exc))
    if pruning.pruned_at is not None:
        return TrialOutcome("pruned", run_dir=result.run_dir, message=f"pruned at epoch {pruning.pruned_at}")
    if result.status != "finished":
        return TrialOutcome("stopped", run_dir=result.run_dir, exit_code=result.exit_code)
    scores = read_evaluations(result.run_dir).get("val")
    if not scores:
        return TrialOutcome("failed", run_dir=result.run_dir, message=f"{result.run_dir} has no validation scores")
    return TrialOutcome("complete", float(scores[spec.objective.score]), result.run_dir)
