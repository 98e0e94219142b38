"""Atomic writes: a user-fixable OS failure is one message naming the path, and no temporary is left."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from cifarlab import atomic
from cifarlab.atomic import atomic_path, make_dirs, output_folder, remove_stale_temporaries, write_text
from cifarlab.errors import CifarlabError


def test_write_into_a_read_only_folder_is_one_message(tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        if os.access(folder, os.W_OK):
            pytest.skip("running as root: chmod does not stop writes here")
        with pytest.raises(CifarlabError, match=r"cannot write .*locked/report\.md .*no permission.*out_dir="):
            write_text(folder / "report.md", "x")
        assert list(folder.iterdir()) == []
    finally:
        folder.chmod(0o755)


def _read_only_mount() -> str | None:
    """A folder on a file system mounted read-only (containers mount /sys so), if there is one."""
    try:
        with open("/proc/mounts") as mounts:
            for line in mounts:
                device, point, kind, options, *_ = line.split()
                if point == "/sys" and "ro" in options.split(","):
                    return point
    except OSError:
        pass
    return None


def test_write_on_a_read_only_file_system_is_one_message():
    mount = _read_only_mount()
    if mount is None:
        pytest.skip("no read-only file system mounted here")
    with pytest.raises(CifarlabError, match=r"cannot write .*\(Read-only file system\): the file system is read-only"):
        write_text(f"{mount}/cifarlab-run/recipe.yaml", "x")


@pytest.mark.parametrize("below", ["folder", "file itself"])
def test_output_folder_below_a_regular_file_is_one_message(tmp_path, below):
    (tmp_path / "runs").write_text("not a folder")
    if below == "folder":
        with pytest.raises(CifarlabError, match=r"cannot write .*runs/quick \(Not a directory\): .*regular file, not a folder"):
            write_text(tmp_path / "runs" / "quick" / "recipe.yaml", "x")
    else:
        with pytest.raises(CifarlabError, match=r"cannot create folder .*runs: a file of that name exists"):
            make_dirs(tmp_path / "runs")
    assert (tmp_path / "runs").read_text() == "not a folder"


def test_full_disk_inside_the_block_removes_the_temporary_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(CifarlabError, match=r"metrics\.json \(No space left on device\): the disk is full"):
        with atomic_path(target) as tmp:
            tmp.write_text("half of the new cont")
            with open("/dev/full", "w") as full:  # a real ENOSPC from the kernel
                full.write("x")
                full.flush()
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_other_os_errors_keep_their_traceback(tmp_path):
    with pytest.raises(ConnectionResetError):
        with atomic_path(tmp_path / "x"):
            raise ConnectionResetError(errno.ECONNRESET, "reset")
    assert list(tmp_path.iterdir()) == []


def test_temporary_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "last.pt"
    child = textwrap.dedent(f"""
        import os, signal
        from cifarlab.atomic import atomic_path
        with atomic_path({str(target)!r}) as tmp:
            tmp.write_bytes(b"x" * 1000)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    result = subprocess.run([sys.executable, "-c", child])
    assert result.returncode == -signal.SIGKILL
    [stale] = list(tmp_path.iterdir())
    live = tmp_path / f".last.pt.pid{os.getpid()}@{os.uname().nodename}.abc123.tmp"  # a writer still at work
    live.write_bytes(b"y")
    other_host = tmp_path / ".last.pt.pid999999999@elsewhere.abc123.tmp"  # a writer on another machine
    other_host.write_bytes(b"z")
    write_text(target, "new")
    assert not stale.exists() and live.exists() and other_host.exists()
    assert target.read_text() == "new"
    assert remove_stale_temporaries(target) == []


def test_temporaries_name_their_writer(tmp_path):
    with atomic_path(tmp_path / "a.txt") as tmp:
        assert tmp.name.startswith(f".a.txt.pid{os.getpid()}@") and tmp.name.endswith(atomic.TEMP_SUFFIX)
        tmp.write_text("a")


def test_an_output_folder_made_for_a_failed_block_goes_again_and_an_existing_one_stays(tmp_path):
    for existing in (False, True):
        folder = tmp_path / f"out{existing}"
        if existing:
            folder.mkdir()
        with pytest.raises(KeyboardInterrupt):
            with output_folder(folder) as path:
                (path / "partial.csv").write_text("method,ratio\n")
                raise KeyboardInterrupt
        assert folder.exists() == existing
    with output_folder(tmp_path / "done") as path:
        (path / "table.csv").write_text("ok\n")
    assert (tmp_path / "done" / "table.csv").read_text() == "ok\n"


def test_a_failed_write_removes_the_folders_it_created_and_only_those(tmp_path):
    def full_disk_write(path):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(CifarlabError, match="the disk is full"):
        full_disk_write(tmp_path / "new" / "deeper" / "report.md")
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()
    with pytest.raises(CifarlabError, match="the disk is full"):
        full_disk_write(tmp_path / "kept" / "made" / "report.md")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"] and not any((tmp_path / "kept").iterdir())
