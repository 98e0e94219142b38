"""Whether a running trial's worker is alive: by pid on this host, by its heartbeat from another host."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

from cifarlab.tuning.liveness import HOST, LAST_SEEN, PID, STALE_AFTER_S, worker_identity, worker_is_dead


def test_this_process_is_alive_and_a_reaped_one_is_dead():
    assert not worker_is_dead(worker_identity(), None)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    identity = {**worker_identity(), PID: child.pid, "worker_started": None}
    child.wait()
    assert worker_is_dead(identity, None)


def test_a_pid_reused_by_a_newer_process_is_not_the_worker():
    assert worker_is_dead({**worker_identity(), "worker_started": "1"}, None)  # this pid, another start time


def test_a_worker_on_another_host_is_dead_once_its_heartbeat_is_stale():
    now = time.time()
    elsewhere = {PID: 1, HOST: socket.gethostname() + "-other"}
    assert not worker_is_dead({**elsewhere, LAST_SEEN: now - 60}, None, now=now)
    assert worker_is_dead({**elsewhere, LAST_SEEN: now - STALE_AFTER_S - 1}, None, now=now)
