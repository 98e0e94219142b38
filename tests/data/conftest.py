"""Fixtures of the data tests."""

from pathlib import Path

import pytest


@pytest.fixture
def cache_home(tmp_path, monkeypatch) -> Path:
    """A private cache folder and no ambient data root: fake archives never reach the real cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CIFARLAB_CACHE", str(folder))
    monkeypatch.delenv("CIFARLAB_DATA", raising=False)
    return folder
