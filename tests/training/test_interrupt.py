"""SIGTERM (cluster preemption) and SIGINT (Ctrl-C) ask the loop to stop after the step; a second one aborts."""

from __future__ import annotations

import os
import signal

import pytest

from cifarlab.training.interrupt import StopRequest


@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_first_signal_requests_a_stop_and_the_previous_handlers_come_back(signum, code, capsys):
    seen = []
    previous = signal.signal(signum, lambda s, f: seen.append(s))
    try:
        with StopRequest() as stop:
            assert not stop.requested
            os.kill(os.getpid(), signum)
            signal.pthread_sigmask(signal.SIG_BLOCK, [])  # let the pending handler run now
            assert stop.requested and stop.signal == signum and stop.exit_code == code
        assert "stopping after this step and writing last.pt" in capsys.readouterr().err
        os.kill(os.getpid(), signum)  # outside the block: the handler from before sees it again
        signal.pthread_sigmask(signal.SIG_BLOCK, [])
        assert seen == [signum]
    finally:
        signal.signal(signum, previous)


@pytest.mark.parametrize("signum, abort", [(signal.SIGTERM, SystemExit), (signal.SIGINT, KeyboardInterrupt)])
def test_second_signal_aborts_at_once(signum, abort):
    before = signal.getsignal(signum)
    with pytest.raises(abort) as info:
        with StopRequest():
            signal.raise_signal(signum)
            signal.raise_signal(signum)
    if abort is SystemExit:
        assert info.value.code == 143
    assert signal.getsignal(signum) is before
