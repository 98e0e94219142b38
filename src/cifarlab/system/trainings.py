"""The cifarlab trainings running on this machine: one marker file per training, holding its thread count."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import torch

from cifarlab.system.processes import is_alive


def _registry() -> Path:
    return Path(tempfile.gettempdir()) / f"cifarlab-trainings-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


@contextlib.contextmanager
def training_slot() -> Iterator[None]:
    """Mark a training as running on this machine while the block runs (one pid file per training)."""
    folder = _registry()
    marker = folder / str(os.getpid())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(torch.get_num_threads()))
    except OSError:
        marker = None  # a read-only temp folder only costs the warning, never the run
    try:
        yield
    finally:
        if marker is not None:
            with contextlib.suppress(OSError):
                marker.unlink()


def other_trainings() -> dict[int, int]:
    """Other live cifarlab trainings on this machine: pid -> its threads. Markers of dead ones are removed."""
    found = {}
    try:
        markers = list(_registry().iterdir())
    except OSError:
        return found
    for marker in markers:
        if not marker.name.isdigit() or int(marker.name) == os.getpid():
            continue
        pid = int(marker.name)
        if is_alive(pid):
            with contextlib.suppress(OSError, ValueError):
                found[pid] = int(marker.read_text() or 1)
        else:
            with contextlib.suppress(OSError):
                marker.unlink()
    return found
