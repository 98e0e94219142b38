"""Kill a training with SIGKILL at random steps, resume it each time, and check it ends bitwise equal.

Each trial starts `cifarlab train RECIPE` in a fresh folder, kills the process (kill -9, no handler
runs) when its metrics.jsonl reaches a few randomly drawn steps, continues it with
`cifarlab train --resume RUN` after each kill, and lets the last part finish. The result must equal
one uninterrupted run of the same recipe: every tensor of last.pt and best.pt (weights, optimiser,
schedule, RNG, metrics window), and every metrics.jsonl and results.csv value except timings.

    python bench/kill_resume.py                          # 20 trials of quick on 5,000 images, 2 epochs
    python bench/kill_resume.py --trials 3 --kills 2     # a short check
    python bench/kill_resume.py --recipe my.yaml train.epochs=3

The same functions kill and resume `cifarlab sweep` and `cifarlab fewshot` in tests/reliability.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import torch

from cifarlab.runs.checkpoint import load_checkpoint

DEFAULT_OVERRIDES = ["train.epochs=2", "data.train_limit=5000", "data.val_size=1000", "train.checkpoint_every=1",
                     "train.log_every=1", "log.sinks=[jsonl]", "eval.test=false"]
# Values that measure time, not training: they differ between any two runs.
_TIMING_SUFFIXES = ("_s", "seconds")
_CHECKPOINTS = ("last.pt", "best.pt")


def cifarlab(*words: str) -> list[str]:
    """The command line that runs `cifarlab WORDS...` with this Python."""
    return [sys.executable, "-m", "cifarlab", *words]


def child_environment(threads: int = 1) -> dict[str, str]:
    """This environment with a fixed thread count, so every part of a run computes in the same order."""
    return {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}


def progress(folder: Path) -> int:
    """Optimiser steps logged so far in every metrics.jsonl under `folder` (each run's last step, summed)."""
    total = 0
    for path in Path(folder).rglob("metrics.jsonl"):
        steps = [0]
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:  # replaced while being read: count it next time
            continue
        for line in lines:
            try:
                steps.append(int(json.loads(line)["step"]))
            except (ValueError, KeyError, TypeError):
                pass  # a line still being written
        total += max(steps)
    return total


def run_until(command: list[str], folder: Path, kill_at: Optional[int], log: Path, timeout: float = 600.0,
              signum: int = signal.SIGKILL) -> Optional[int]:
    """Run `command` until it exits (its exit code) or `progress(folder)` reaches `kill_at`.

    At `kill_at` the process gets `signum`: after kill -9 (the default) the result is None; after a
    signal it handles (SIGTERM, SIGINT) it is the exit code the process ends with.
    """
    with open(log, "a") as output:
        output.write(f"$ {' '.join(command)}  (kill at {kill_at})\n")
        output.flush()
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, env=child_environment())
        deadline = time.monotonic() + timeout
        try:
            while process.poll() is None:
                if kill_at is not None and progress(folder) >= kill_at:
                    process.send_signal(signum)
                    code = process.wait(timeout=timeout)
                    return None if signum == signal.SIGKILL else code
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{' '.join(command)} ran longer than {timeout:.0f} s; see {log}")
                time.sleep(0.002)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return process.returncode


def train_with_kills(next_command: Callable[[], list[str]], folder: Path, kill_points: list[int], log: Path) -> int:
    """Kill the training at each progress point in turn, then let the last part finish; its exit code.

    `next_command()` says how to go on after each kill (start, or resume what is there). A part
    that ends by itself before its kill point is not a kill: the loop stops there.
    """
    for point in kill_points:
        code = run_until(next_command(), folder, point, log)
        if code is not None:
            return code
    code = run_until(next_command(), folder, None, log)
    assert code is not None
    return code


def draw_kill_points(rng: random.Random, total: int, kills: int, first_before: Optional[int] = None) -> list[int]:
    """`kills` increasing progress points in 1..total-1; the first below `first_before` when given
    (before the first checkpoint, so the folder holds no last.pt yet)."""
    points = []
    if first_before is not None and first_before > 1:
        points.append(rng.randint(1, first_before - 1))
    low = points[-1] + 1 if points else 1
    candidates = range(low, total)
    return sorted(points + rng.sample(candidates, min(kills - len(points), len(candidates))))


# ---------------------------------------------------------------- comparing with an uninterrupted run


def differences(reference: Path, resumed: Path) -> list[str]:
    """Every way `resumed` differs from `reference`: checkpoints, metrics and results tables (timings aside)."""
    reference, resumed = Path(reference), Path(resumed)
    found = []
    compared = 0
    for name in ("metrics.jsonl", "results.csv", *_CHECKPOINTS):
        for path in sorted(reference.rglob(name)):
            relative = path.relative_to(reference)
            other = resumed / relative
            compared += 1
            if not other.is_file():
                found.append(f"{relative}: missing after the resumes")
            elif name == "metrics.jsonl":
                found += _compare(str(relative), _metrics(path), _metrics(other))
            elif name == "results.csv":
                found += _compare(str(relative), _table(path), _table(other))
            else:
                found += _compare(str(relative), _checkpoint(path), _checkpoint(other))
    if not compared:
        found.append(f"{reference} holds no metrics.jsonl, results.csv or checkpoint to compare")
    return found


def _is_timing(key: str) -> bool:
    return key.endswith(_TIMING_SUFFIXES)


def _without_timings(value):
    if isinstance(value, dict):
        return {k: _without_timings(v) for k, v in value.items() if not (isinstance(k, str) and _is_timing(k))}
    return value


def _metrics(path: Path) -> list[dict]:
    return [_without_timings(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


def _table(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return [_without_timings(row) for row in csv.DictReader(file)]


def _checkpoint(path: Path) -> dict:
    content = _without_timings(load_checkpoint(path))
    if isinstance(content.get("recipe"), dict):  # the reference and the killed copy are written to two folders
        content["recipe"] = {key: value for key, value in content["recipe"].items() if key != "out_dir"}
    return content


def _compare(where: str, expected, got) -> list[str]:
    """Paths inside two nested values at which they differ; tensors must match bit for bit."""
    if isinstance(expected, torch.Tensor) or isinstance(got, torch.Tensor):
        same = (isinstance(expected, torch.Tensor) and isinstance(got, torch.Tensor) and expected.dtype == got.dtype
                and expected.shape == got.shape and torch.equal(expected, got))
        return [] if same else [f"{where}: tensors differ"]
    if isinstance(expected, dict) and isinstance(got, dict):
        if expected.keys() != got.keys():
            return [f"{where}: keys {sorted(map(str, expected))} != {sorted(map(str, got))}"]
        return [d for key in expected for d in _compare(f"{where}.{key}", expected[key], got[key])]
    if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        if len(expected) != len(got):
            return [f"{where}: {len(expected)} entries != {len(got)}"]
        return [d for i, (a, b) in enumerate(zip(expected, got)) for d in _compare(f"{where}[{i}]", a, b)]
    same = expected == got or (isinstance(expected, float) and isinstance(got, float)
                               and math.isnan(expected) and math.isnan(got))
    return [] if same else [f"{where}: {expected!r} != {got!r}"]


# ---------------------------------------------------------------- one recipe, many trials


def train_command(recipe: str, overrides: list[str], out_dir: Path) -> Callable[[], list[str]]:
    """Start `recipe` in `out_dir`, or after a kill resume the run folder it made there."""
    run_dir = out_dir / "run"

    def command() -> list[str]:
        if (run_dir / "recipe.yaml").is_file():
            return cifarlab("train", "--resume", str(run_dir))
        return cifarlab("train", recipe, *overrides, f"out_dir={out_dir}", "name=run")

    return command


def trial(recipe: str, overrides: list[str], reference: Path, folder: Path, rng: random.Random, kills: int) -> tuple[list[int], list[str]]:
    """One killed-and-resumed run in `folder`; its kill points and its differences from `reference`."""
    total = progress(reference)
    first_checkpoint = _first_checkpoint_step(reference)
    points = draw_kill_points(rng, total, kills, first_before=first_checkpoint)
    code = train_with_kills(train_command(recipe, overrides, folder), folder, points, folder / "log.txt")
    if code != 0:
        return points, [f"the last part exited with {code}; see {folder / 'log.txt'}"]
    return points, differences(reference / "run", folder / "run")


def _first_checkpoint_step(reference: Path) -> Optional[int]:
    """The step of the first epoch record: where the first last.pt is written (train.checkpoint_every=1)."""
    for line in (reference / "run" / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record.get("kind") == "epoch":
            return int(record["step"])
    return None


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="key=value overrides on top of the defaults below")
    parser.add_argument("--recipe", default="quick", help="recipe file or shipped name (default quick)")
    parser.add_argument("--trials", type=int, default=20, help="killed-and-resumed runs (default 20)")
    parser.add_argument("--kills", type=int, default=3, help="kill -9 per trial (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill points")
    parser.add_argument("--keep", help="keep the runs in this folder (default: a temporary folder)")
    args = parser.parse_args(argv)
    overrides = DEFAULT_OVERRIDES + args.overrides
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as temporary:
        base = Path(args.keep or temporary)
        reference = base / "reference"
        reference.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        code = run_until(train_command(args.recipe, overrides, reference)(), reference, None, reference / "log.txt")
        if code != 0:
            print(f"the uninterrupted run failed (exit {code}); see {reference / 'log.txt'}", file=sys.stderr)
            return 1
        reference_s = time.perf_counter() - started
        print(f"{args.recipe} {' '.join(overrides)}: {progress(reference)} steps, uninterrupted run {reference_s:.1f} s")
        exact = 0
        started = time.perf_counter()
        for number in range(args.trials):
            folder = base / f"trial{number:02d}"
            folder.mkdir(parents=True, exist_ok=True)
            points, found = trial(args.recipe, overrides, reference, folder, rng, args.kills)
            exact += not found
            verdict = "bitwise equal" if not found else f"{len(found)} differences: " + "; ".join(found[:3])
            print(f"trial {number + 1:2d}: killed at steps {points}, {verdict}", flush=True)
        wall = time.perf_counter() - started
    print(f"{exact}/{args.trials} killed-and-resumed runs ended bitwise equal to the uninterrupted run "
          f"({args.kills} kill -9 each); {wall:.0f} s wall for the trials ({wall / max(args.trials, 1):.1f} s each) "
          f"on {os.cpu_count()} cores, torch {torch.__version__}")
    return 0 if exact == args.trials else 1


if __name__ == "__main__":
    sys.exit(main())
