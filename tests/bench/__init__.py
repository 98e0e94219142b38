"""Tests of the scripts in bench/, which are files, not an importable package."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCH_DIR = Path(__file__).resolve().parents[2] / "bench"
# The scripts import each other by plain name (`from common import ...`), as `python bench/NAME.py` allows.
sys.path.insert(0, str(BENCH_DIR))


def load_bench_script(name: str) -> ModuleType:
    """bench/<name>.py imported as a module (without running its main)."""
    spec = importlib.util.spec_from_file_location(f"{name}_bench", BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there while the class is made
    spec.loader.exec_module(module)
    return module
