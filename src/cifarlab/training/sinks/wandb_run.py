"""Weights & Biases: the recipe as config, the records as history, the final scores as summary.

Needs the `wandb` extra. `WANDB_MODE=offline` keeps everything in the run folder (`wandb/`) for a
later `wandb sync`; a resumed run continues the same W&B run.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from cifarlab.atomic import write_text
from cifarlab.errors import CifarlabError
from cifarlab.training.callbacks import Callback
from cifarlab.training.sinks.reported import final_metrics, report_images, scalar_tags

# Where the W&B run id is kept inside the run folder, so a resumed run reports into the same W&B run.
RUN_ID_FILE = Path("wandb") / "cifarlab_run_id"


def import_wandb():
    """The wandb module, or CifarlabError saying how to install it."""
    try:
        import wandb
    except ImportError:
        raise CifarlabError(
            "log.sinks names wandb but wandb is not installed; pip install 'cifarlab[wandb]' "
            "or drop wandb from log.sinks"
        ) from None
    return wandb


class WandbSink(Callback):
    """Logs every record to a W&B run stored under the run folder; summary holds the final scores."""

    def __init__(self, run_dir: Path, project: str = "cifarlab"):
        self.wandb = import_wandb()  # fail before training starts, not after
        self.run_dir = Path(run_dir)
        self.project = project
        self.run = None

    def on_start(self, trainer, total_steps: int, start_step: int) -> None:
        id_file = self.run_dir / RUN_ID_FILE
        if start_step > 0 and id_file.is_file():
            run_id = id_file.read_text().strip()
        else:
            run_id = uuid.uuid4().hex[:12]
            write_text(id_file, run_id + "\n")
        try:
            self.run = self.wandb.init(
                project=self.project, name=trainer.recipe.name, id=run_id, resume="allow",
                dir=str(self.run_dir), config=dataclasses.asdict(trainer.recipe),
            )
        except self.wandb.Error as exc:
            raise CifarlabError(
                f"W&B could not start a run ({exc}); run `wandb login`, or set WANDB_MODE=offline "
                "to keep the W&B run in the run folder for a later `wandb sync`"
            ) from None

    def on_log(self, trainer, record: dict) -> None:
        self.run.log(scalar_tags(record), step=record["step"])

    def on_epoch(self, trainer, record: dict) -> None:
        self.run.log(scalar_tags(record), step=record["step"])

    def on_eval(self, trainer, split: str, result: dict) -> None:
        if self.run is not None:
            self.run.summary.update(final_metrics(split, result))

    def on_end(self, trainer, status: str) -> None:
        if self.run is None:
            return
        if status == "finished" and trainer is not None:
            images = {f"report/{path.stem}": self.wandb.Image(str(path)) for path in report_images(trainer.run_dir)}
            if images:
                self.run.log(images)
        self.run.finish(exit_code=0 if status == "finished" else 1)
        self.run = None
