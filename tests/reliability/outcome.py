"""Run `cifarlab train` in-process for the fuzz tests and check how it ended: trained, or refused cleanly."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from cifarlab.cli import main
from cifarlab.runs import LAST, METRICS, read_metrics

# Bounded so the suite stays fast; CIFARLAB_FUZZ_EXAMPLES=2000 fuzzes harder (and finds rarer cases).
EXAMPLES = int(os.environ.get("CIFARLAB_FUZZ_EXAMPLES", "40"))


def train(recipe: Path, words: list[str], folder: Path) -> tuple[int, str]:
    """`cifarlab train RECIPE WORDS...` in-process from `folder`: exit code and what it wrote to stderr."""
    stderr = io.StringIO()
    here = os.getcwd()
    os.chdir(folder)
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = main(["train", str(recipe), *words])
    finally:
        os.chdir(here)
    return code, stderr.getvalue()


def check_outcome(code: int, stderr: str, out: Path) -> None:
    """Exit 0 with a one-step run in `out`, or exit 2 with one error line and nothing in `out`."""
    assert "Traceback" not in stderr, stderr
    if code == 2:
        assert "cifarlab: error: " in stderr, stderr
        left = sorted(str(p.relative_to(out)) for p in out.rglob("*")) if out.exists() else []
        assert not left, f"a refused run left {left} behind; {stderr}"
    else:
        assert code == 0, stderr
        (run_dir,) = list(out.iterdir())
        assert (run_dir / LAST).is_file()
        assert [record["step"] for record in read_metrics(run_dir / METRICS) if record["kind"] == "step"] == [1]
