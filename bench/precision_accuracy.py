"""Does bf16 autocast cost accuracy? The same recipe trained in fp32 and in bf16 for several seeds.

`train.precision: auto` picks bf16 on a CPU or GPU with bf16 units; this is the check behind that
default. For each recipe and seed both precisions train from the same seed (same initial weights,
same batches), and the table gives test top-1 mean and sd per precision, the mean difference, and
the training time of each (the speed-up bf16 buys). Run it alone: two trainings at once slow down
about 20x on a 2-core CPU.

    python bench/precision_accuracy.py                                  # the demo and the CPU BiT recipe, 3 seeds
    python bench/precision_accuracy.py --recipes quick --seeds 0 1 2 3 4
    python bench/precision_accuracy.py --recipes bit_upstream_cifar100_cpu --overrides train.epochs=2
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
from common import append_jsonl, exit_if_stopped

from cifarlab.config import load_recipe
from cifarlab.runner.run import run_recipe

RESULTS = Path(__file__).resolve().parent / "results"
PRECISIONS = ("fp32", "bf16")
# The CPU BiT recipe trains 10 epochs (19 min in fp32); 2 epochs keep 3 seeds x 2 precisions near 20 minutes
# while the network is still learning fast, where a precision effect would show most.
DEFAULT_OVERRIDES = {"quick": [], "bit_upstream_cifar100_cpu": ["train.epochs=2", "train.export_npz=false"]}


def train_once(recipe_name: str, precision: str, seed: int, overrides: list[str], out_dir: str) -> dict:
    recipe = load_recipe(recipe_name, [*overrides, f"train.precision={precision}"])
    recipe = replace(recipe, seed=seed, name=f"{recipe.name}_{precision}_seed{seed}", out_dir=out_dir)
    start = time.perf_counter()
    result = run_recipe(recipe)
    exit_if_stopped(result)
    wall = time.perf_counter() - start
    epochs = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    train_s = sum(record.get("time_s", 0.0) for record in epochs if record.get("kind") == "epoch")
    return {"recipe": recipe_name, "precision": precision, "seed": seed, "top1": result.test["top1"],
            "train_s": round(train_s, 1), "wall_s": round(wall, 1), "overrides": overrides}


def summary_table(rows: list[dict]) -> str:
    lines = ["| recipe | precision | seeds | test top-1 mean | sd | min | max | training s (median) |",
             "|---|---|---|---|---|---|---|---|"]
    for recipe in dict.fromkeys(row["recipe"] for row in rows):
        means = {}
        for precision in PRECISIONS:
            chosen = [row for row in rows if row["recipe"] == recipe and row["precision"] == precision]
            accs = [100 * row["top1"] for row in chosen]
            if not accs:
                continue
            means[precision] = statistics.mean(accs)
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            lines.append(f"| {recipe} | {precision} | {len(accs)} | {means[precision]:.2f}% | {sd:.2f} | {min(accs):.2f}% | "
                         f"{max(accs):.2f}% | {statistics.median(row['train_s'] for row in chosen):.1f} |")
        if len(means) == 2:
            lines.append(f"| {recipe} | bf16 - fp32 | | {means['bf16'] - means['fp32']:+.2f} points | | | | |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(DEFAULT_OVERRIDES))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--overrides", nargs="*", default=None,
                        help="recipe overrides for every recipe (default: the short BiT run above, none for the rest)")
    parser.add_argument("--out-dir", default="runs/bench_precision", help="where the run folders go")
    parser.add_argument("--results", type=Path, default=RESULTS / "precision_accuracy_cpu.jsonl")
    args = parser.parse_args()
    machine = f"{platform.machine()} {'cuda ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'cpu'}"
    print(f"device: {machine} x{torch.get_num_threads()} threads, torch {torch.__version__}", flush=True)
    rows = []
    for recipe in args.recipes:
        overrides = args.overrides if args.overrides is not None else DEFAULT_OVERRIDES.get(recipe, [])
        for seed in args.seeds:
            for precision in PRECISIONS:
                row = train_once(recipe, precision, seed, overrides, args.out_dir)
                rows.append(row)
                print(json.dumps(row), flush=True)
                append_jsonl(args.results, [{**row, "device": machine}])
    print(summary_table(rows))


if __name__ == "__main__":
    main()
