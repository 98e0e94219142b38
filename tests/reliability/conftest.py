"""bench/kill_resume.py, loaded as a module: the kill-and-resume harness the kill tests and the benchmark share."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "kill_resume.py"


@pytest.fixture(scope="session")
def harness():
    spec = importlib.util.spec_from_file_location("kill_resume_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
