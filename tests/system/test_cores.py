"""Busy cores give one warning: another cifarlab training (named by pid) or other work on the machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

from cifarlab.system import cores as cores_module
from cifarlab.system import trainings


def test_another_training_on_the_machine_gives_one_warning_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    child = textwrap.dedent("""
        import sys, time
        from cifarlab.system.trainings import training_slot
        with training_slot():
            print("running", flush=True)
            time.sleep(60)
    """)
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True,
                               env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        assert process.stdout.readline().strip() == "running"
        cores = cores_module.usable_cores()
        message = cores_module.warn_if_oversubscribed(threads=cores)
        assert message is not None and f"pid {process.pid}" in message and "run one at a time" in message
        assert capsys.readouterr().err.strip() == message
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    # The killed training's marker is stale: it no longer counts and is removed.
    assert trainings.other_trainings() == {}
    assert list(trainings._registry().iterdir()) == []
    message = cores_module.warn_if_oversubscribed(threads=1)
    assert message is None or "other processes already keep" in message  # only other work on the machine may still warn


def test_a_busy_process_is_seen_at_once_not_a_minute_later_as_the_load_average_would(monkeypatch):
    monkeypatch.setattr(cores_module, "other_trainings", lambda: {})  # a parallel test worker's training is not this test's
    spin = subprocess.Popen([sys.executable, "-c", "import time\nend = time.time() + 20\nwhile time.time() < end: pass"])
    try:
        time.sleep(0.3)
        busy = cores_module.machine_load(window_s=0.5)
        assert busy is not None and busy >= 0.8  # the spinning process alone keeps one core busy
        message = cores_module.warn_if_oversubscribed(threads=cores_module.usable_cores())
        assert message is not None and "other processes already keep" in message
    finally:
        spin.kill()
        spin.wait()
