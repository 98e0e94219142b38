"""metrics.jsonl: one JSON object per line for every step and epoch record, the run's own history."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional, TextIO

from cifarlab.atomic import write_text
from cifarlab.runs import read_metrics
from cifarlab.training.callbacks import Callback


class JsonlSink(Callback):
    """Appends one JSON line per record; on resume, first drops the lines from beyond the resumed step."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file: Optional[TextIO] = None

    def on_start(self, trainer, total_steps: int, start_step: int) -> None:
        if start_step > 0 and self.path.exists():
            write_text(self.path, "".join(line + "\n" for line in lines_up_to(self.path, start_step)))
        elif self.path.exists():
            self.path.unlink()  # a fresh run in a used folder starts a fresh history
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a")

    def on_log(self, trainer, record: dict) -> None:
        self._write(record)

    def on_epoch(self, trainer, record: dict) -> None:
        self._write(record)

    def on_end(self, trainer, status: str) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _write(self, record: dict) -> None:
        # Flushed per record so a crash loses at most the line being written.
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()


def lines_up_to(path: Path, step: int) -> list[str]:
    """The lines of a metrics.jsonl whose record is at or before `step`, read by the one tolerant reader
    (`cifarlab.runs.read_metrics`: a last line cut short by a crash is dropped, a damaged line elsewhere is
    an error naming it). Records are written back as this sink writes them, so the text is unchanged."""
    return [json.dumps(record) for record in read_metrics(path)
            if isinstance(record.get("step"), (int, float)) and record["step"] <= step]
