"""Where the training loop reports: one small interface, three sinks (console, JSON lines, TensorBoard).

A record is a dict with `kind` ("step" or "epoch") and plain numbers (see evaluate.plots for the keys).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Optional, Protocol


class MetricsSink(Protocol):
    def start(self, total_steps: int, start_step: int) -> None: ...
    def log(self, record: dict) -> None: ...
    def close(self) -> None: ...


class JsonlSink:
    """Appends one JSON object per line; on resume, drops lines from beyond the resumed step."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._file = None

    def start(self, total_steps: int, start_step: int) -> None:
        if start_step > 0 and self.path.exists():
            keep = [ln for ln in self.path.read_text().splitlines() if ln and json.loads(ln)["step"] <= start_step]
            self.path.write_text("".join(ln + "\n" for ln in keep))
        elif self.path.exists():
            self.path.unlink()
        self._file = open(self.path, "a")

    def log(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file:
            self._file.close()


class TensorBoardSink:
    """Writes the same numbers as TensorBoard scalars under train/ and val/."""

    def __init__(self, log_dir: Path):
        self.log_dir = Path(log_dir)
        self._writer = None

    def start(self, total_steps: int, start_step: int) -> None:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is a core dependency; a broken install should not stop training
            return
        self._writer = SummaryWriter(str(self.log_dir), purge_step=start_step or None)

    def log(self, record: dict) -> None:
        if self._writer is None:
            return
        step = record["step"]
        for key, value in record.items():
            if key in ("kind", "step") or value is None or not isinstance(value, (int, float)):
                continue
            tag = f"val/{key[4:]}" if key.startswith("val_") else f"{record['kind']}/{key}"
            self._writer.add_scalar(tag, value, step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


def _fmt(record: dict) -> str:
    parts = [f"step {record['step']}", f"epoch {record['epoch']:.2f}" if isinstance(record["epoch"], float) else f"epoch {record['epoch']}"]
    for key, fmt in (("loss", ".4f"), ("train_top1", ".2%"), ("val_loss", ".4f"), ("val_top1", ".2%"), ("lr", ".3g"), ("images_per_s", ".0f")):
        if record.get(key) is not None:
            parts.append(f"{key} {format(record[key], fmt)}")
    return "  ".join(parts)


class ConsoleProgress:
    """A rich progress bar on a terminal (loss, accuracy, lr, images/s, time left); plain lines otherwise."""

    def __init__(self, description: str, stream=None, force_plain: Optional[bool] = None):
        self.description = description
        self.stream = stream or sys.stdout
        self.plain = force_plain if force_plain is not None else not self.stream.isatty()
        self._progress = None
        self._task = None
        self._t0 = time.perf_counter()

    def start(self, total_steps: int, start_step: int) -> None:
        self.total, self._start = total_steps, start_step
        self._t0 = time.perf_counter()
        if self.plain:
            print(f"{self.description}: {total_steps} steps (from step {start_step})", file=self.stream, flush=True)
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeRemainingColumn(), TextColumn("{task.fields[status]}"), transient=False,
        )
        self._progress.start()
        self._task = self._progress.add_task(self.description, total=total_steps, completed=start_step, status="")

    def log(self, record: dict) -> None:
        if self.plain:
            if record["kind"] == "epoch" or record["step"] == self.total:
                print(_fmt(record) + self._eta(record["step"]), file=self.stream, flush=True)
            return
        status = _fmt(record).split("  ", 2)[-1]
        self._progress.update(self._task, completed=record["step"], status=status)

    def _eta(self, step: int) -> str:
        done = step - self._start
        if done <= 0:
            return ""
        left = (time.perf_counter() - self._t0) / done * (self.total - step)
        return f"  left {int(left // 60)}m{int(left % 60):02d}s" if math.isfinite(left) else ""

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
