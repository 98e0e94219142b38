"""One process at a time per run folder.

Two processes writing one run folder overwrite each other's checkpoints and metrics: a second terminal's
`cifarlab train --resume RUN` while the first still trains, a sweep command started again while the first
still runs (it would resume, or restart and delete, a run in progress), or two `cifarlab train` of one
recipe started together (both would pick runs/<name>). While a process trains a run it holds an advisory
lock (`flock`) on RUN/.lock; any other process that would write the folder gets one message naming the
holder. The kernel drops the lock when its process ends, however it ends (kill -9 included), so a lock
is never stale; the file itself is removed when the holder lets go.

Locks are per process and re-entrant: a sweep holds a point's folder while it clears it and calls
`run_recipe`, which takes the same folder again. On a system without `fcntl` (Windows) nothing is locked.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

from cifarlab.atomic import raise_user_error
from cifarlab.errors import CifarlabError
from cifarlab.runs.files import LOCK_FILE

try:
    import fcntl
except ImportError:  # Windows: no flock; run folders are not guarded there
    fcntl = None


# flock's answers on a file system that cannot lock (some FUSE and network mounts): such a folder is
# used unguarded, as before locks existed, rather than refused.
_NO_LOCKING = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}

# Folders this process holds: resolved path -> [open lock file descriptor, nesting depth].
_held: dict[Path, list[int]] = {}


class RunFolderBusy(CifarlabError):
    """Another process holds the run folder."""


def holder(run_dir: str | os.PathLike) -> Optional[str]:
    """`pid N on HOST` of the other process that holds `run_dir`, or None when none does."""
    run_dir = Path(run_dir)
    if fcntl is None or run_dir.resolve() in _held or not (run_dir / LOCK_FILE).is_file():
        return None
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:  # its holder let go between the two calls
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _describe(os.pread(fd, 200, 0))
    except OSError as exc:
        if exc.errno not in _NO_LOCKING:
            raise
    finally:
        os.close(fd)  # also drops the shared lock, if it was taken
    return None


def holds_files(run_dir: str | os.PathLike) -> bool:
    """Whether `run_dir` exists and holds anything besides its lock file (a run, or the start of one)."""
    run_dir = Path(run_dir)
    return run_dir.is_dir() and any(entry.name != LOCK_FILE for entry in run_dir.iterdir())


@contextlib.contextmanager
def hold_run_folder(run_dir: str | os.PathLike) -> Iterator[None]:
    """Hold `run_dir` (which must exist) for this process for the duration of the block.

    Raises RunFolderBusy, naming the holder, when another process holds it.
    """
    key = Path(run_dir).resolve()
    if fcntl is None:
        yield
        return
    if key in _held:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    fd = _lock(key)
    _held[key] = [fd, 1]
    try:
        yield
    finally:
        del _held[key]
        # Remove the file while still holding it, then let go: a process that opened the old file
        # meanwhile finds it unlinked after its own flock and tries again on a new one (see _lock).
        with contextlib.suppress(FileNotFoundError):
            if os.stat(key / LOCK_FILE).st_ino == os.fstat(fd).st_ino:
                os.unlink(key / LOCK_FILE)
        os.close(fd)


def _lock(run_dir: Path) -> int:
    """An open descriptor of run_dir/.lock, exclusively locked by this process."""
    path = run_dir / LOCK_FILE
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise_user_error(path, exc)  # a full disk or a read-only folder: one message
        try:
            _flock_exclusive(fd)
        except BlockingIOError:
            busy = _describe(os.pread(fd, 200, 0))
            os.close(fd)
            raise RunFolderBusy(f"{run_dir} is in use by another cifarlab process ({busy}); wait for it to end, "
                                f"or stop it, then run this command again") from None
        except OSError as exc:
            if exc.errno not in _NO_LOCKING:
                os.close(fd)
                raise
            return fd  # unguarded: this file system has no flock
        try:
            same_file = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same_file = False
        if same_file:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
            except OSError as exc:  # a full disk: the run could not write its files either
                with contextlib.suppress(OSError):
                    os.unlink(path)  # still held, as on release
                os.close(fd)
                raise_user_error(path, exc)
            return fd
        os.close(fd)  # the file was removed by its last holder after we opened it: lock the new one


def _flock_exclusive(fd: int, attempts: int = 5) -> None:
    """flock(LOCK_EX) without waiting on a holder, but past `holder()`'s shared probe of a moment."""
    for attempt in range(attempts):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.02)


def _describe(content: bytes) -> str:
    words = content.decode(errors="replace").split()
    if len(words) >= 2:
        return f"pid {words[0]} on {words[1]}"
    return "pid unknown"
