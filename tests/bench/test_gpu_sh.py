"""bench/gpu.sh parses, refuses an unknown part, and every script it calls accepts the arguments it passes."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
import sys

import pytest

from tests.bench import BENCH_DIR, load_bench_script

SCRIPT = BENCH_DIR / "gpu.sh"
CALLS = re.findall(r"\$PY bench/(\w+)\.py ([^|;}\n]*)", SCRIPT.read_text())


class ArgumentsParsed(Exception):
    """Raised in place of measuring, once the script's own parser has accepted the arguments."""


def test_an_unknown_part_is_refused_naming_the_parts():
    result = subprocess.run(["bash", str(SCRIPT), "speed"], capture_output=True, text=True)
    assert result.returncode == 2
    assert "unknown part 'speed': choose from checks pipeline bit fewshot fast94 fast100" in result.stderr


@pytest.mark.slow
def test_its_checks_part_collects_the_gpu_tests_that_make_test_leaves_out():
    assert "tests/gpu" in SCRIPT.read_text()
    result = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             str(BENCH_DIR.parent / "tests" / "gpu")], capture_output=True, text=True)
    assert result.returncode == 0 and "test_an_fp16_step_on_a_gpu" in result.stdout, result.stdout + result.stderr


def test_it_calls_the_pipeline_bit_fast94_and_fast100_benchmarks():
    assert {name for name, _ in CALLS} == {"pipeline", "bit_step", "fast94", "fast100"}


def test_every_recipe_it_names_is_shipped():
    recipes = re.findall(r"configs/[\w/]+\.yaml", SCRIPT.read_text())
    assert recipes and all((BENCH_DIR.parent / recipe).is_file() for recipe in recipes), recipes


@pytest.mark.parametrize("name, arguments", CALLS)
def test_each_benchmark_call_has_arguments_its_script_accepts(monkeypatch, name, arguments):
    script = load_bench_script(name)
    parse_args = argparse.ArgumentParser.parse_args

    def parse_these(parser, args=None, namespace=None):
        parse_args(parser, shlex.split(arguments), namespace)  # exits 2 on an argument the script does not take
        raise ArgumentsParsed

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_these)
    with pytest.raises(ArgumentsParsed):
        script.main()
