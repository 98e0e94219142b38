"""Ctrl-C or SIGTERM during training: finish the current step, write a checkpoint, exit cleanly.

SIGTERM is what SLURM (`--signal=TERM@120`), Kubernetes and preemptible machines send some
time before they kill a job; handling it like Ctrl-C leaves a `last.pt` to `--resume` from.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Optional

HANDLED = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """While active, the first SIGINT or SIGTERM sets `requested`; a second one aborts at once.

    Use as `with StopRequest() as stop: ... if stop.requested: save and stop`; on exit the
    previous handlers are back. `exit_code` is the shell's code for the signal (130, 143).
    """

    def __init__(self, saves_checkpoint: bool = True) -> None:
        self.saves_checkpoint = saves_checkpoint  # False for a training without a run folder (a study's)
        self.requested = False
        self.signal: Optional[int] = None
        self._previous: dict[int, object] = {}

    @property
    def exit_code(self) -> Optional[int]:
        """128 + the signal number once a signal arrived (SIGINT: 130, SIGTERM: 143), else None."""
        return None if self.signal is None else 128 + self.signal

    def _handle(self, signum: int, frame) -> None:
        name = signal.Signals(signum).name
        if self.requested:
            if signum == signal.SIGINT:
                raise KeyboardInterrupt
            raise SystemExit(128 + signum)
        self.requested = True
        self.signal = signum
        again = "Ctrl-C" if signum == signal.SIGINT else name
        then = " and writing last.pt" if self.saves_checkpoint else ""
        print(f"\n{name}: stopping after this step{then} ({again} again to abort)",
              file=sys.stderr, flush=True)

    def __enter__(self) -> StopRequest:
        # Signal handlers can only be installed from the main thread; elsewhere stay passive.
        if threading.current_thread() is threading.main_thread():
            for signum in HANDLED:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, previous in self._previous.items():
            # None: the previous handler was not installed from Python; the default is the best stand-in.
            signal.signal(signum, signal.SIG_DFL if previous is None else previous)
        self._previous.clear()
