"""Whether a process is alive: the one check the run lock, stale temporary files and the trainings registry share."""

from __future__ import annotations

import os


def is_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (another user's live process counts as alive)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's live process
    return True
