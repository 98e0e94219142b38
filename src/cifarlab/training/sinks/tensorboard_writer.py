"""TensorBoard: the training numbers as scalars, the final scores, the recipe as hparams and the report plots.

Everything goes into one event stream under the run's `tensorboard/` folder, so the HParams
dashboard links each run's recipe to its own `final_test/...` scalars.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cifarlab.training.callbacks import Callback
from cifarlab.training.sinks.reported import (
    final_metrics,
    recipe_params,
    report_images,
    scalar_tags,
)


class TensorBoardSink(Callback):
    """Scalars under train/, epoch/, val/; final_<split>/ scores; hparams and report/ images once finished."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self.writer = None
        self.step = 0
        self.finals: dict[str, float] = {}

    def on_start(self, trainer, total_steps: int, start_step: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        # A resumed run hides what the stopped one logged after its checkpoint (step > start_step).
        self.writer = SummaryWriter(str(self.log_dir), purge_step=start_step + 1 if start_step else None, flush_secs=30)
        self.step = start_step

    def on_log(self, trainer, record: dict) -> None:
        self._scalars(record)

    def on_epoch(self, trainer, record: dict) -> None:
        self._scalars(record)

    def on_eval(self, trainer, split: str, result: dict) -> None:
        if self.writer is None:
            return
        scores = final_metrics(split, result)
        self.finals.update(scores)
        for tag, value in scores.items():
            self.writer.add_scalar(tag, value, self.step)

    def on_end(self, trainer, status: str) -> None:
        if self.writer is None:
            return
        if status == "finished":  # a stopped run comes back; it reports its recipe once, when done
            if trainer is not None:
                self._hparams(recipe_params(trainer.recipe))
                self._images(Path(trainer.run_dir))
        self.writer.close()
        self.writer = None

    def _scalars(self, record: dict) -> None:
        self.step = record["step"]
        for tag, value in scalar_tags(record).items():
            self.writer.add_scalar(tag, value, self.step)

    def _hparams(self, params: dict) -> None:
        """The recipe and the final scores as one HParams session, written into this run's own stream."""
        from torch.utils.tensorboard.summary import hparams

        # SummaryWriter.add_hparams would open a second run folder; the summaries go here instead.
        for summary in hparams(params, dict(self.finals)):
            self.writer.file_writer.add_summary(summary)

    def _images(self, run_dir: Path) -> None:
        from PIL import Image

        for path in report_images(run_dir):
            with Image.open(path) as image:
                pixels = np.asarray(image.convert("RGB"))
            self.writer.add_image(f"report/{path.stem}", pixels, self.step, dataformats="HWC")
