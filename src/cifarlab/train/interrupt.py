"""Ctrl-C during training: finish the current step, write a checkpoint, exit cleanly."""

from __future__ import annotations

import signal
import sys
import threading


class StopRequest:
    """While active, the first SIGINT sets `requested`; a second one aborts at once."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nstopping after this step and writing last.pt (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
