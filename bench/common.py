"""What the benchmarks share: timing (one median, one images-per-second loop), results files, and a
training run stopped by a signal ending the benchmark cleanly.

Each script imports this by its plain name: `python bench/NAME.py` puts bench/ on the import path.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import torch

if TYPE_CHECKING:  # only the annotation: cpu_peak and the timing helpers need none of the training stack
    from cifarlab.runner.run import RunResult


def synchronize(device: Optional[torch.device]) -> None:
    """Wait for queued GPU work, so that a timer reads the work's end rather than its launch."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(fn: Callable[[], object], repeats: int, device: torch.device, warmup: int = 1) -> float:
    """Median wall time of `fn` over `repeats` calls after `warmup` untimed ones (kernel selection, allocation)."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def time_batches(batches: Iterable, n: int, step: Optional[Callable] = None, device: Optional[torch.device] = None,
                 warmup: int = 1) -> float:
    """Images per second over `n` batches of (images, labels, ...) after `warmup` untimed ones, each batch
    passed to `step` when given; synchronised at the end only, as a training loop would be."""
    iterator = _stream(batches)
    try:
        for _ in range(warmup):
            images, labels = next(iterator)[:2]
            if step:
                step((images, labels))
        synchronize(device)
        start, seen = time.perf_counter(), 0
        for _ in range(n):
            images, labels = next(iterator)[:2]
            if step:
                step((images, labels))
            seen += len(labels)
        synchronize(device)
        return seen / (time.perf_counter() - start)
    finally:
        # Shut a DataLoader's workers down: left running, they would load the CPU during the next timing.
        iterator.close()


def _stream(batches: Iterable):
    yield from batches  # a generator: closing it drops the DataLoader iterator, which stops its workers


def append_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows to a results file (one JSON object a line), so that runs add up across sessions."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as out:
        for row in rows:
            out.write(json.dumps(row) + "\n")


def exit_if_stopped(result: RunResult) -> None:
    """Exit with the run's signal code when Ctrl-C or SIGTERM stopped it: a stopped run has no test result, and
    the runs finished before it are already in the benchmark's log."""
    if result.status == "stopped":
        print(f"stopped by a signal during {result.run_dir} (its checkpoint is written); the runs finished before "
              "it are in the benchmark's log", file=sys.stderr)
        raise SystemExit(result.exit_code or 130)
