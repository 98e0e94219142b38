"""The training callback that feeds a trial's per-epoch validation to Optuna and stops the run when it is pruned."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from cifarlab.atomic import write_text
from cifarlab.training.callbacks import Callback

COMMAND_FILE = "retrain_command.txt"  # in each trial's run folder: the `cifarlab train` line that retrains it
RUN_DIR = "run_dir"  # the trial's user attribute naming its run folder, relative to the study folder


class PruningCallback(Callback):
    """Reports the metric after every validated epoch (`trial.report`) and asks the pruner whether to go on.

    A pruned run stops as Ctrl-C stops one: after the current step, with last.pt written, so its
    folder stays an ordinary (stopped) run. The last epoch is never pruned: all that is left then
    is the evaluation, and a finished trial gives the sampler a real value.
    """

    def __init__(self, trial, epoch_key: str, command: str, study_dir: Path):
        self.trial, self.epoch_key, self.command, self.study_dir = trial, epoch_key, command, Path(study_dir)
        self.pruned_at: Optional[int] = None  # the epoch the pruner stopped the run at
        self.trainer = None

    def on_start(self, trainer, total_steps: int, start_step: int) -> None:
        self.trainer = trainer
        # The run folder exists from here (a run that fails before its first checkpoint removes it again):
        # name it now, so even a trial killed mid-run points to its folder.
        run_dir = Path(trainer.run_dir)
        write_text(run_dir / COMMAND_FILE, self.command + "\n")
        self.trial.set_user_attr(RUN_DIR, str(run_dir.relative_to(self.study_dir)))

    def on_epoch(self, trainer, record: dict) -> None:
        value = record.get(self.epoch_key)
        if value is None:  # an epoch without validation (train.eval_every > 1)
            return
        epoch = int(record["epoch"])
        self.trial.report(float(value), step=epoch)
        if record.get("step") != trainer.total_steps and self.trial.should_prune():
            self.pruned_at = epoch
            trainer.stop_requested = True

    def diverged(self) -> bool:
        """Whether the run's loss became NaN or infinite (the loop then stops it with an error)."""
        return self.trainer is not None and self.trainer.window.first_nonfinite() is not None
