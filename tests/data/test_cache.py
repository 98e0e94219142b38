"""The decoded-dataset cache file: exact round trip, damage detected, written atomically."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from cifarlab.data import cache
from cifarlab.errors import CifarlabError


def arrays() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {"train_images": rng.integers(0, 256, (7, 3, 5, 4), dtype=np.uint8),
            "train_labels": rng.integers(0, 10**12, 7, dtype=np.int64),
            "test_images": np.zeros((0, 3, 5, 4), dtype=np.uint8)}


def test_cache_round_trip_keeps_every_array_and_the_metadata(tmp_path):
    cache.write_cache(tmp_path / "x.cache", arrays(), {"classes": ["a", "b"]})
    loaded, meta = cache.read_cache(tmp_path / "x.cache")
    assert meta == {"classes": ["a", "b"]}
    for name, array in arrays().items():
        assert loaded[name].dtype == torch.from_numpy(array).dtype
        assert torch.equal(loaded[name], torch.from_numpy(array))


@pytest.mark.parametrize("damage", ["truncate", "magic"])
def test_damaged_cache_files_are_refused(tmp_path, damage):
    path = tmp_path / "x.cache"
    cache.write_cache(path, arrays(), {})
    raw = path.read_bytes()
    path.write_bytes(raw[:-10] if damage == "truncate" else b"X" + raw[1:])
    with pytest.raises(ValueError):
        cache.read_cache(path)


def test_failed_cache_write_leaves_nothing_behind(tmp_path):
    bad = {"images": np.zeros(3, dtype=np.float32)}
    with pytest.raises(TypeError):
        cache.write_cache(tmp_path / "x.cache", bad, {})
    assert list(tmp_path.iterdir()) == []


def test_cache_dir_comes_from_the_environment_and_is_created(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "a" / "b"))
    assert cache.cache_dir() == tmp_path / "a" / "b" and (tmp_path / "a" / "b").is_dir()
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "file" / "sub"))
    with pytest.raises(CifarlabError, match="set CIFARLAB_CACHE to a writable folder"):
        cache.cache_dir()


def killed_cache_writer(path) -> None:
    """Run a cache write of `path` in a child process that is killed (SIGKILL) halfway through it."""
    child = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        from cifarlab.data import cache
        def die(array):  # called for the first array, after the header is written
            os.kill(os.getpid(), signal.SIGKILL)
        cache.np.ascontiguousarray = die
        cache.write_cache(cache.Path({str(path)!r}), {{"images": np.zeros((64, 3, 32, 32), np.uint8)}}, {{}})
    """)
    assert subprocess.run([sys.executable, "-c", child]).returncode == -signal.SIGKILL


@pytest.mark.parametrize("then", ["write", "read"])
def test_temporary_of_a_killed_cache_writer_is_removed_by_the_next_write_or_read(tmp_path, then):
    path = tmp_path / "cifar10.cache"
    if then == "read":
        cache.write_cache(path, arrays(), {"classes": ["a"]})
    killed_cache_writer(path)
    [stale] = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert stale.name.startswith(".cifar10.cache.pid") and stale.read_bytes().startswith(cache.MAGIC)
    if then == "write":
        cache.write_cache(path, arrays(), {"classes": ["a"]})
    else:
        cache.read_cache(path)
    assert [p.name for p in tmp_path.iterdir()] == ["cifar10.cache"]
    assert cache.read_cache(path)[1] == {"classes": ["a"]}
