"""Which running trials still have a live worker, and what becomes of those whose worker died.

A worker killed mid-trial (kill -9, a lost node, a cluster's time limit) cannot tell Optuna, so its
trial stays RUNNING for ever. Every trial therefore records who runs it: pid, host and the process's
start time (so a pid reused by a newer process is not taken for the worker). On this host the pid
says at once whether the worker lives; a trial from another host is judged by its `last_seen` time,
which a heartbeat thread refreshes while the trial runs. A dead worker's trial is marked FAIL (it is
never counted as finished) and its values are queued again, so the same point is tried once more.
"""

from __future__ import annotations

import datetime
import os
import socket
import threading
import time
from typing import Optional

from cifarlab.system.processes import is_alive

HEARTBEAT_S = 60.0  # how often a running trial says it is alive
STALE_AFTER_S = 600.0  # silence after which a trial from another host counts as dead
PID, HOST, STARTED, LAST_SEEN, RETRY_OF = "worker_pid", "worker_host", "worker_started", "last_seen", "retry_of"


def _process_start(pid: int) -> Optional[str]:
    """The start time of process `pid` in clock ticks since boot (Linux), '' for a zombie, None when unknown."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rpartition(")")[2].split()  # the command name may hold spaces and parentheses
    except OSError:
        return None
    return "" if fields[0] == "Z" else fields[19]


def worker_identity() -> dict:
    """User attributes that name this process as a trial's worker."""
    return {PID: os.getpid(), HOST: socket.gethostname(), STARTED: _process_start(os.getpid()), LAST_SEEN: time.time()}


def _alive_here(pid: int, started: Optional[str]) -> bool:
    """Whether the worker `pid` still runs: alive, and (where /proc tells) the same process that started."""
    if not is_alive(pid):
        return False
    now = _process_start(pid)
    if now == "":
        return False  # killed and not yet reaped by its parent
    return started is None or now is None or now == started


def worker_is_dead(attrs: dict, started_at: Optional[datetime.datetime], now: Optional[float] = None) -> bool:
    """Whether the worker of a RUNNING trial with these user attributes has died."""
    now = time.time() if now is None else now
    if attrs.get(HOST) == socket.gethostname() and isinstance(attrs.get(PID), int):
        return not _alive_here(attrs[PID], attrs.get(STARTED))
    seen = attrs.get(LAST_SEEN)
    if seen is None:  # killed between creating the trial and naming its worker
        seen = started_at.timestamp() if started_at else now
    return now - float(seen) > STALE_AFTER_S


def recover_dead_trials(study) -> list[int]:
    """Mark FAIL every RUNNING trial whose worker died, queue its values again, and return their numbers."""
    from optuna.trial import TrialState

    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if not worker_is_dead(trial.user_attrs, trial.datetime_start):
            continue
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        if trial.params:
            study.enqueue_trial(trial.params, user_attrs={RETRY_OF: trial.number})
        recovered.append(trial.number)
    return recovered


class Heartbeat:
    """While entered, refreshes the trial's `last_seen` every HEARTBEAT_S seconds from a background thread."""

    def __init__(self, trial, interval_s: float = HEARTBEAT_S):
        self.trial, self.interval_s = trial, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="trial-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.trial.set_user_attr(LAST_SEEN, time.time())
            except Exception:  # a database busy or unreachable for a moment: the next beat tries again
                pass
