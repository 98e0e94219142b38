"""Write files so that a crash or Ctrl-C never leaves a half-written one behind.

A failure the user can fix (a read-only or full disk, an output folder below a regular file,
no permission) becomes one CifarlabError naming the path and the fix; the temporary file is
removed. Any other OSError keeps its traceback: it is a bug or something unexpected.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

from cifarlab.errors import CifarlabError
from cifarlab.system.processes import is_alive

# Temporaries are `.<name>.pid<pid>@<host>.<random>.tmp` beside their target: hidden, and naming
# the writer, so one left by a killed process (kill -9, power loss) is found and removed later.
TEMP_SUFFIX = ".tmp"

# What each user-fixable errno means; the fix is the caller's `hint` (where the place is chosen).
_PROBLEMS = {
    errno.EACCES: "no permission to write there",
    errno.EPERM: "no permission to write there",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "the disk is full: free some space, or",
    errno.EDQUOT: "the disk quota is used up: free some space, or",
    errno.ENOTDIR: "a part of the path is a regular file, not a folder",
    errno.EEXIST: "a part of the path is a regular file, not a folder",
    errno.EISDIR: "a folder of that name is in the way",
    errno.ENAMETOOLONG: "the path is too long",
}
OUTPUT_HINT = "write somewhere else (out_dir=FOLDER for runs)"


def user_error(path: str | os.PathLike, exc: OSError, hint: str = OUTPUT_HINT) -> CifarlabError | None:
    """The CifarlabError for an OSError the user can fix while writing `path`; None for any other."""
    problem = _PROBLEMS.get(exc.errno)
    if problem is None:
        return None
    joint = " " if problem.endswith(" or") else "; "
    return CifarlabError(f"cannot write {path} ({exc.strerror or exc}): {problem}{joint}{hint}")


def raise_user_error(path: str | os.PathLike, exc: OSError, hint: str = OUTPUT_HINT) -> NoReturn:
    """Raise `user_error`'s CifarlabError for `exc` (from `exc`) when the user can fix it, else `exc` itself."""
    error = user_error(path, exc, hint)
    if error is None:
        raise exc
    raise error from exc


def make_dirs(path: str | os.PathLike, hint: str = OUTPUT_HINT) -> Path:
    """Create folder `path` and its parents; a user-fixable failure is one CifarlabError."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError as exc:  # `path` itself is a regular file
        raise CifarlabError(f"cannot create folder {path}: a file of that name exists; remove it or "
                            f"{hint}") from exc
    except OSError as exc:
        raise_user_error(path, exc, hint)
    return path


@contextlib.contextmanager
def output_folder(path: str | os.PathLike, hint: str = OUTPUT_HINT) -> Iterator[Path]:
    """`make_dirs(path)` for a command's outputs, before its work: a folder the block created is removed
    again if the block fails or is interrupted, so that a stopped command leaves no empty or partial folder."""
    path = Path(path)
    existed = path.exists()
    make_dirs(path, hint)
    try:
        yield path
    except BaseException:
        if not existed:
            shutil.rmtree(path, ignore_errors=True)
        raise


def temporary_prefix(path: Path) -> str:
    """The start of this process's temporary names for `path`."""
    return f".{path.name}.pid{os.getpid()}@{socket.gethostname()}."


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove temporaries of `path` whose writer (a process on this machine) is gone; return them.

    Temporaries of live processes and of other machines (a shared disk) are left alone, and so
    is anything that cannot be removed (a read-only folder): cleaning up never fails a run.
    """
    path = Path(path)
    pattern = re.compile(re.escape(f".{path.name}.pid") + r"(\d+)@(.+)\.[^.]+" + re.escape(TEMP_SUFFIX))
    host = socket.gethostname()
    removed = []
    try:
        candidates = list(path.parent.glob(f".{glob.escape(path.name)}.pid*{TEMP_SUFFIX}"))
    except OSError:
        return removed
    for candidate in candidates:
        match = pattern.fullmatch(candidate.name)
        if match and match.group(2) == host and not is_alive(int(match.group(1))):
            with contextlib.suppress(OSError):
                candidate.unlink()
                removed.append(candidate)
    return removed


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, hint: str = OUTPUT_HINT) -> Iterator[Path]:
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds.

    Temporaries of `path` left by killed writers are removed first. A failure the user can fix
    is a CifarlabError ending with `hint`, which says how to choose another place.
    """
    path = Path(path)
    created = _missing_folders(path.parent)
    make_dirs(path.parent, hint)
    remove_stale_temporaries(path)
    tmp = None
    done = False
    try:
        fd, name = tempfile.mkstemp(prefix=temporary_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
        os.close(fd)
        tmp = Path(name)
        yield tmp
        if tmp.exists():
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
        done = True
    except OSError as exc:
        raise_user_error(path, exc, hint)
    finally:
        if tmp is not None and tmp.exists():
            tmp.unlink()
        if not done:
            _remove_if_empty(created)


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove the folders a failed write created (deepest first), as long as they are empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (another file was written there meanwhile) or already gone
            return


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path: str | os.PathLike, text: str) -> None:
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
