"""Progress for slow work outside the training loop: a rich bar on a terminal, nothing when piped.

Decoding a dataset, the LR range test and a test-time-augmented evaluation wrap their loop:

    for batch in track(batches, "LR range test", total=num_steps):
        ...

or, where the work does not come as one iterable:

    with task("decoding cifar10", total=5) as advance:
        for part in parts:
            ...
            advance()

Output piped to a file stays free of bars and control characters: there the loop runs silently,
so a log holds only the lines the training console writes.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import Optional, TextIO, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

Item = TypeVar("Item")


def is_terminal(stream: TextIO) -> bool:
    """True when `stream` is an interactive terminal (a bar is welcome), False for files and pipes."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def terminal_console(stream: Optional[TextIO] = None, force_terminal: Optional[bool] = None) -> Console:
    """A rich Console writing to `stream` (stdout by default); `force_terminal` overrides the detection."""
    return Console(file=stream or sys.stdout, force_terminal=force_terminal)


def progress_bar(console: Console, *fields: TextColumn) -> Progress:
    """The bar every cifarlab progress display shares: description, bar, done/total, elapsed, time left."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), *fields,
        console=console,
    )


@contextlib.contextmanager
def task(description: str, total: Optional[float] = None, stream: Optional[TextIO] = None) -> Iterator[Callable[..., None]]:
    """Show a bar for the block on a terminal; yields `advance(amount=1)` to call as work gets done."""
    stream = stream or sys.stdout
    if not is_terminal(stream):
        yield _ignore
        return
    with progress_bar(terminal_console(stream)) as bar:
        task_id = bar.add_task(description, total=total)

        def advance(amount: float = 1) -> None:
            bar.advance(task_id, amount)

        yield advance


def track(iterable: Iterable[Item], description: str, total: Optional[float] = None,
          stream: Optional[TextIO] = None) -> Iterator[Item]:
    """Yield the items of `iterable`, advancing a bar by one each (total from `len()` when not given)."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with task(description, total, stream) as advance:
        for item in iterable:
            yield item
            advance()


def _ignore(amount: float = 1) -> None:
    """Where no bar is shown, advancing it costs nothing."""
