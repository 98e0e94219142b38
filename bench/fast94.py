"""configs/fast94.yaml for N seeds: test accuracy (with its TTA) and wall time, mean and spread.

On a GPU, with `--airbench`, airbench's own `train94` (the published reference, `pip install airbench`)
runs the same number of seeds in the same session and the time ratio is printed. Results are appended
to bench/results/fast94_<device>.jsonl so that seeds can be added across sessions.

    python bench/fast94.py --seeds 0 1                     # this CPU
    python bench/fast94.py --seeds 0 1 2 3 4 --airbench    # GPU, side by side with airbench
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

from cifarlab.config import load_recipe
from cifarlab.experiments.run import run_recipe

RESULTS = Path(__file__).resolve().parent / "results"


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} cpu x{torch.get_num_threads()}"


def run_cifarlab(recipe_path: str, seed: int, overrides: list[str]) -> dict:
    recipe = load_recipe(recipe_path, overrides)
    recipe = replace(recipe, seed=seed, name=f"{recipe.name}_seed{seed}", out_dir="runs/bench_fast94")
    t0 = time.perf_counter()
    result = run_recipe(recipe)
    wall = time.perf_counter() - t0
    train_s = sum(json.loads(line).get("time_s", 0.0) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()
                  if json.loads(line)["kind"] == "epoch")
    return {"who": "cifarlab", "seed": seed, "top1": result.test["top1"], "tta": recipe.eval.tta,
            "train_s": round(train_s, 1), "wall_s": round(wall, 1), "run": str(result.run_dir)}


def run_airbench(seed: int) -> dict:
    import airbench

    torch.manual_seed(seed)
    t0 = time.perf_counter()
    acc = airbench.train94(run=seed, verbose=False)
    return {"who": "airbench", "seed": seed, "top1": float(acc), "tta": "airbench level 2",
            "train_s": None, "wall_s": round(time.perf_counter() - t0, 1)}


def describe(rows: list[dict], who: str) -> str:
    accs = [100 * r["top1"] for r in rows if r["who"] == who]
    walls = [r["wall_s"] for r in rows if r["who"] == who]
    if not accs:
        return f"{who}: no runs"
    spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return (f"{who:9s} n={len(accs)}  top-1 mean {statistics.mean(accs):.2f}% (sd {spread:.2f}, "
            f"min {min(accs):.2f}, max {max(accs):.2f})  wall median {statistics.median(walls):.0f} s, max {max(walls):.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="configs/fast94.yaml")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--airbench", action="store_true", help="also run airbench.train94 (GPU only)")
    ap.add_argument("overrides", nargs="*", help="recipe overrides, e.g. train.device=cuda")
    args = ap.parse_args()
    RESULTS.mkdir(exist_ok=True)
    log = RESULTS / f"fast94_{'gpu' if torch.cuda.is_available() else 'cpu'}.jsonl"
    rows = []
    for seed in args.seeds:
        row = run_cifarlab(args.recipe, seed, args.overrides)
        rows.append(row)
        if args.airbench:
            rows.append(run_airbench(seed))
        with open(log, "a") as f:
            for r in rows[-(2 if args.airbench else 1):]:
                f.write(json.dumps({**r, "device": device_name(), "date": time.strftime("%Y-%m-%d")}) + "\n")
    print(f"device: {device_name()}, torch {torch.__version__}, recipe {args.recipe}")
    print(describe(rows, "cifarlab"))
    if args.airbench:
        print(describe(rows, "airbench"))
        ours = statistics.median(r["wall_s"] for r in rows if r["who"] == "cifarlab")
        theirs = statistics.median(r["wall_s"] for r in rows if r["who"] == "airbench")
        print(f"time ratio cifarlab / airbench (median wall): {ours / theirs:.2f}")
    print(f"appended to {log}")


if __name__ == "__main__":
    main()
