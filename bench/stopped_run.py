"""A benchmark's training run that a signal stopped ends the benchmark, not with a traceback."""

from __future__ import annotations

import sys

from cifarlab.experiments.run import RunResult


def exit_if_stopped(result: RunResult) -> None:
    """Exit with the run's signal code when Ctrl-C or SIGTERM stopped it: a stopped run has no test result, and
    the runs finished before it are already in the benchmark's log."""
    if result.status == "stopped":
        print(f"stopped by a signal during {result.run_dir} (its checkpoint is written); the runs finished before "
              "it are in the benchmark's log", file=sys.stderr)
        raise SystemExit(result.exit_code or 130)
