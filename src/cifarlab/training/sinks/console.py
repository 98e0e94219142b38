"""The training console: a live bar on a terminal, one clean line per epoch everywhere.

On a terminal each finished epoch prints a line that stays on screen above the bar, and the bar
shows steps, loss, accuracy, learning rate, images/s and time left. Piped to a file the output is
exactly a start line, one line per epoch and a final line: no bar, no control characters.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Optional, TextIO

from rich.progress import TextColumn

from cifarlab.progress import is_terminal, progress_bar, terminal_console
from cifarlab.training.callbacks import Callback


class ConsoleProgress(Callback):
    """Start line, one line per epoch and a final line; on a terminal also a live bar below them.

    `force_plain` True writes lines only, False draws the bar even where `stream` is no terminal;
    None decides by `stream.isatty()`. `clock` measures elapsed time (seconds).
    """

    def __init__(self, description: str, stream: Optional[TextIO] = None, force_plain: Optional[bool] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.description = description
        self.stream = stream or sys.stdout
        self.plain = force_plain if force_plain is not None else not is_terminal(self.stream)
        self.force_terminal = True if force_plain is False else None
        self.clock = clock
        self.bar = None
        self.task_id = None
        self.total_steps = self.start_step = self.step = 0
        self.steps_per_epoch: Optional[int] = None
        self.started_at = clock()
        self.started = False
        self.best: Optional[tuple[float, int]] = None  # (val_top1, step) of the best epoch seen

    def on_start(self, trainer, total_steps: int, start_step: int) -> None:
        self.total_steps, self.start_step, self.step = total_steps, start_step, start_step
        self.steps_per_epoch = getattr(trainer, "steps_per_epoch", None)
        self.started_at = self.clock()
        self.started = True
        self._print(self._start_line())
        if not self.plain:
            console = terminal_console(self.stream, force_terminal=self.force_terminal)
            self.bar = progress_bar(console, TextColumn("{task.fields[status]}"))
            self.bar.start()
            self.task_id = self.bar.add_task(self.description, total=total_steps, completed=start_step, status="")

    def on_step(self, trainer, step) -> None:
        self.step = step.step
        if self.bar is not None:
            self.bar.update(self.task_id, completed=step.step)

    def on_log(self, trainer, record: dict) -> None:
        self.step = record["step"]
        if self.bar is not None:
            self.bar.update(self.task_id, completed=record["step"], status=bar_status(record))

    def on_epoch(self, trainer, record: dict) -> None:
        self.step = record["step"]
        if record.get("val_top1") is not None and (self.best is None or record["val_top1"] > self.best[0]):
            self.best = (record["val_top1"], record["step"])
        self._print(self._epoch_line(record))
        if self.bar is not None:
            self.bar.update(self.task_id, completed=record["step"], status=bar_status(record))
            if record["step"] >= self.total_steps:
                self._stop_bar()  # evaluation bars follow; only one live display at a time

    def on_eval(self, trainer, split: str, result: dict) -> None:
        self._stop_bar()

    def on_end(self, trainer, status: str) -> None:
        self._stop_bar()
        if self.started:  # a run that failed while being set up has printed nothing to close
            self._print(self._final_line(status))

    def _print(self, line: str) -> None:
        if self.bar is not None:
            # Printed through the live display, the line lands above the bar and stays there.
            self.bar.console.print(line, markup=False, highlight=False, soft_wrap=True)
        else:
            print(line, file=self.stream, flush=True)

    def _stop_bar(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None

    def _start_line(self) -> str:
        plan = f"{self.total_steps} steps"
        if self.steps_per_epoch:
            plan += f" ({math.ceil(self.total_steps / self.steps_per_epoch)} epochs of {self.steps_per_epoch})"
        if self.start_step:
            return f"{self.description}: resuming at step {self.start_step} of {plan}"
        return f"{self.description}: training {plan}"

    def _epoch_line(self, record: dict) -> str:
        epoch = f"epoch {record['epoch']}"
        if self.steps_per_epoch:
            epoch += f"/{math.ceil(self.total_steps / self.steps_per_epoch)}"
        parts = [epoch, f"step {record['step']}/{self.total_steps}", *metric_parts(record)]
        if record.get("time_s") is not None:
            parts.append(f"{record['time_s']:.1f}s")
        done = record["step"] - self.start_step
        if 0 < done and record["step"] < self.total_steps:
            seconds_per_step = (self.clock() - self.started_at) / done
            parts.append(f"left {duration(seconds_per_step * (self.total_steps - record['step']))}")
        return "  ".join(parts)

    def _final_line(self, status: str) -> str:
        elapsed = duration(self.clock() - self.started_at)
        if status == "finished":
            line = f"{self.description}: finished {self.step} steps in {elapsed}"
            if self.best is not None:
                line += f"; best val_top1 {self.best[0]:.2%} at step {self.best[1]}"
            return line
        return f"{self.description}: {status} at step {self.step} of {self.total_steps} after {elapsed}"


# (record key, label, format) in the order an epoch line shows them.
EPOCH_FIELDS = (
    ("loss", "loss", ".4f"), ("train_top1", "top1", ".2%"), ("val_loss", "val_loss", ".4f"),
    ("val_top1", "val_top1", ".2%"), ("ema_val_top1", "ema_val_top1", ".2%"),
    ("test_top1", "test_top1 (display only)", ".2%"), ("lr", "lr", ".3g"),
)


def metric_parts(record: dict) -> list[str]:
    """`loss 0.8123`, `top1 71.23%`, ... for the numbers a record has, then images per second."""
    parts = [f"{label} {format(record[key], spec)}" for key, label, spec in EPOCH_FIELDS if record.get(key) is not None]
    if record.get("images_per_s") is not None:
        parts.append(f"{record['images_per_s']:,.0f} img/s")
    return parts


def bar_status(record: dict) -> str:
    """The short text beside the bar: epoch, loss, accuracy, lr and images/s of the latest record."""
    parts = [f"epoch {record['epoch']:.2f}" if isinstance(record.get("epoch"), float) else f"epoch {record.get('epoch')}"]
    if record.get("loss") is not None:
        parts.append(f"loss {record['loss']:.4f}")
    if record.get("train_top1") is not None:
        parts.append(f"acc {record['train_top1']:.1%}")
    if record.get("lr") is not None:
        parts.append(f"lr {record['lr']:.3g}")
    if record.get("images_per_s") is not None:
        parts.append(f"{record['images_per_s']:,.0f} img/s")
    return "  ".join(parts)


def duration(seconds: float) -> str:
    """12.3s, 4m05s or 1h02m03s."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s"
