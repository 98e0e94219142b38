"""CPU training steps with `train.allocator: auto` (freed memory kept in the process) against the C
library's defaults (`system`), measured in the same invocation.

Each measurement is a fresh process (glibc's settings cannot be undone inside one), alternating the
two settings round by round so a change in the machine's load hits both; it times the recipe's
training step as bench/recipe_speed.py does, after --warmup steps (the heap settles in 2-3 steps),
and reports the process's minor page faults and system CPU time. The table gives medians over the
rounds and the ratio auto / system.

With --train, each measurement is instead a whole `cifarlab train` run of a recipe file (data
pipeline, validation and checkpoints included; no final test evaluation), and the table compares
training times as the run's report counts them.

    python bench/allocator.py                          # six recipes, 3 rounds (about 10 minutes here)
    python bench/allocator.py --recipes quick fast94 --rounds 5
    python bench/allocator.py --train configs/fast94.yaml train.epochs=1 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

MODES = ("auto", "system")
DEFAULT_RECIPES = ["quick", "fast94", "fdu/resnet18", "dl4ds/cpu/scratch", "bit_transfer_offline_cpu",
                   "bit_transfer_offline"]


def measure_child(name: str, mode: str, steps: int, warmup: int) -> None:
    """In a fresh process: apply `mode`, time the recipe's step, print one JSON line."""
    from recipe_speed import recipe_speed, training_recipe

    from cifarlab.config.shipped import shipped_recipes
    from cifarlab.training.allocator import apply_allocator_setting

    applied = apply_allocator_setting(mode)
    shape, rate, _ = recipe_speed(training_recipe(shipped_recipes()[name]), steps, warmup)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"applied": applied, "img_s": rate, "faults": usage.ru_minflt, "sys_s": usage.ru_stime,
                      "peak_mib": usage.ru_maxrss / 1024, "batch": shape.batch_size, "precision": shape.precision}))


def measure(name: str, mode: str, steps: int, warmup: int) -> dict:
    command = [sys.executable, __file__, "--child", name, mode, "--steps", str(steps), "--warmup", str(warmup)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def train_once(recipe_file: str, mode: str, overrides: list[str], out_dir: Path, name: str) -> dict:
    """One `cifarlab train` in a fresh process: its training seconds (the sum of its epochs' times,
    as the report counts them) and the process's page faults, system CPU time and peak memory."""
    command = [sys.executable, "-m", "cifarlab", "train", recipe_file, f"train.allocator={mode}", f"out_dir={out_dir}",
               f"name={name}", "log.sinks=[jsonl]", "eval.test=false", *overrides]
    errors = out_dir / f"{name}.stderr"
    with open(errors, "w") as stderr:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        _, status, usage = os.wait4(process.pid, 0)  # this child's own resource usage
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"allocator: `{' '.join(command)}` failed:\n{errors.read_text()[-2000:]}")
    records = [json.loads(line) for line in (out_dir / name / "metrics.jsonl").read_text().splitlines()]
    seconds = sum(r["time_s"] for r in records if r["kind"] == "epoch")
    return {"train_s": seconds, "faults": usage.ru_minflt, "sys_s": usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024}


def compare_training(recipe_file: str, overrides: list[str], rounds: int) -> None:
    """Whole training runs of one recipe, alternating the two settings, and their median times."""
    with tempfile.TemporaryDirectory(prefix="cifarlab-allocator-") as scratch:
        runs = alternate(rounds, lambda mode, round_index: train_once(recipe_file, mode, overrides, Path(scratch),
                                                                      f"{mode}{round_index}"))
    print(f"{rounds} whole runs per setting, alternating; medians")
    print("| run | training s auto | training s system | time ratio auto / system | minor faults auto / system | "
          "system CPU s auto / system | peak MiB auto / system |")
    print("|---|---|---|---|---|---|---|")
    ratio = median(runs, "auto", "train_s") / median(runs, "system", "train_s")
    print(f"| {' '.join([recipe_file, *overrides])} | {median(runs, 'auto', 'train_s'):.1f} | "
          f"{median(runs, 'system', 'train_s'):.1f} | {ratio:.2f} | {process_cells(runs)} |", flush=True)
    for mode in MODES:
        print(f"{mode}: training s " + ", ".join(f"{run['train_s']:.1f}" for run in runs[mode]))


def alternate(rounds: int, measure_one: Callable[[str, int], dict],
              settings: Sequence[str] = MODES) -> dict[str, list[dict]]:
    """Each setting measured `rounds` times, the order rotated every round (for two, swapped) so a
    change in the machine's load hits each; measure_one(setting, round_index) -> one measurement."""
    runs: dict[str, list[dict]] = {setting: [] for setting in settings}
    for round_index in range(rounds):
        shift = round_index % len(settings)
        for setting in [*settings[shift:], *settings[:shift]]:
            runs[setting].append(measure_one(setting, round_index))
    return runs


def median(runs: dict[str, list[dict]], mode: str, key: str) -> float:
    return statistics.median(run[key] for run in runs[mode])


def process_cells(runs: dict[str, list[dict]], first: str = "auto", second: str = "system") -> str:
    """The table cells every comparison shares, `first` / `second`: page faults, system CPU time, peak memory."""
    return (f"{median(runs, first, 'faults'):,.0f} / {median(runs, second, 'faults'):,.0f} | "
            f"{median(runs, first, 'sys_s'):.1f} / {median(runs, second, 'sys_s'):.1f} | "
            f"{median(runs, first, 'peak_mib'):,.0f} / {median(runs, second, 'peak_mib'):,.0f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=DEFAULT_RECIPES, help="names as `cifarlab recipes` lists them")
    parser.add_argument("--rounds", type=int, default=3, help="processes per setting; the table gives medians")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--train", nargs="+", metavar="RECIPE_FILE [KEY=VALUE]",
                        help="compare whole `cifarlab train` runs of this recipe file (with these overrides)")
    parser.add_argument("--child", nargs=2, metavar=("RECIPE", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure_child(args.child[0], args.child[1], args.steps, args.warmup)
        return
    if args.train:
        compare_training(args.train[0], args.train[1:], args.rounds)
        return
    from cifarlab.config.shipped import shipped_recipes

    unknown = [name for name in args.recipes if name not in shipped_recipes()]
    if unknown:
        raise SystemExit(f"allocator: unknown recipe(s) {', '.join(unknown)}; `cifarlab recipes` lists them")
    print(f"{args.rounds} rounds of {args.steps} timed steps after {args.warmup} warm-up steps; medians")
    print("| recipe | batch | precision | img/s auto | img/s system | ratio | minor faults auto / system | "
          "system CPU s auto / system | peak MiB auto / system |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.recipes:
        runs = alternate(args.rounds, lambda mode, round_index, name=name: measure(name, mode, args.steps, args.warmup))
        first = runs["auto"][0]
        ratio = median(runs, "auto", "img_s") / median(runs, "system", "img_s")
        print(f"| {name} | {first['batch']} | {first['precision']} | {median(runs, 'auto', 'img_s'):,.1f} | "
              f"{median(runs, 'system', 'img_s'):,.1f} | {ratio:.2f}x | {process_cells(runs)} |", flush=True)


if __name__ == "__main__":
    main()
