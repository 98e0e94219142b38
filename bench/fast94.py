"""configs/fast94.yaml for N seeds: test accuracy (with its TTA), training and wall time, mean and spread.

On a GPU, with `--airbench`, airbench's own `train94` (the published reference, `pip install airbench`)
runs the same seeds in the same session, on the same CIFAR-10 images (written for it from cifarlab's copy,
so nothing is downloaded), and the ratio of the median training times is printed; `--warmup` first runs
each once untimed, as airbench's own timing does. Results are appended
to bench/results/fast94_<device>.jsonl so that seeds can be added across sessions.

    python bench/fast94.py --seeds 0 1                     # this CPU
    python bench/fast94.py --seeds 0 1 2 3 4 --airbench --warmup train.device=cuda   # GPU, beside airbench
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch

from cifarlab.atomic import atomic_path
from cifarlab.config import load_recipe
from cifarlab.data import load_dataset
from cifarlab.data.cache import cache_dir
from cifarlab.experiments.run import run_recipe

RESULTS = Path(__file__).resolve().parent / "results"


def device_name() -> str:
    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"{platform.machine()} cpu x{torch.get_num_threads()}"


def run_cifarlab(recipe_path: str, seed: int, overrides: list[str], label: str = "") -> dict:
    """One run of the recipe. `train_s` sums the epochs' times (training alone); `wall_s` also holds loading the
    data, the final TTA evaluation and writing the report with its plots."""
    recipe = load_recipe(recipe_path, overrides)
    recipe = replace(recipe, seed=seed, name=f"{recipe.name}_{label or f'seed{seed}'}", out_dir="runs/bench_fast94")
    t0 = time.perf_counter()
    result = run_recipe(recipe)
    wall = time.perf_counter() - t0
    records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
    train_s = sum(r.get("time_s", 0.0) for r in records if r["kind"] == "epoch")
    return {"who": "cifarlab", "seed": seed, "top1": result.test["top1"], "tta": recipe.eval.tta,
            "train_s": round(train_s, 2), "wall_s": round(wall, 1), "run": str(result.run_dir)}


def airbench_data(folder: Path) -> Path:
    """airbench reads `cifar10/train.pt` and `cifar10/test.pt` (uint8 NHWC images, labels, class names) from its
    working folder and downloads CIFAR-10 through torchvision when they are missing. Write them from
    cifarlab's own copy of CIFAR-10 so that the reference runs offline on exactly the same images."""
    target = folder / "cifar10"
    if not all((target / f"{split}.pt").is_file() for split in ("train", "test")):
        ds = load_dataset("cifar10")
        for split, images, labels in (("train", ds.train_images, ds.train_labels), ("test", ds.test_images, ds.test_labels)):
            with atomic_path(target / f"{split}.pt") as tmp:
                torch.save({"images": images.permute(0, 2, 3, 1).contiguous(), "labels": labels,
                            "classes": list(ds.classes)}, tmp)
    return folder


def run_airbench(seed: int, folder: Path, timed: bool = True) -> dict:
    """airbench.train94 (training only, timed with a device sync either side), then its level-2 TTA evaluation."""
    import airbench

    with contextlib.chdir(airbench_data(folder)):
        torch.manual_seed(seed)
        sync()
        t0 = time.perf_counter()
        model = airbench.train94(run=seed if timed else -1, verbose=False)
        sync()
        train_s = time.perf_counter() - t0
        top1 = airbench.evaluate(model, airbench.CifarLoader("cifar10", train=False, batch_size=2000), tta_level=2)
        wall = time.perf_counter() - t0
    return {"who": "airbench", "seed": seed, "top1": float(top1), "tta": "mirror+translate (level 2)",
            "train_s": round(train_s, 2), "wall_s": round(wall, 2)}


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def describe(rows: list[dict], who: str) -> str:
    accs = [100 * r["top1"] for r in rows if r["who"] == who]
    walls = [r["wall_s"] for r in rows if r["who"] == who]
    trains = [r["train_s"] for r in rows if r["who"] == who]
    if not accs:
        return f"{who}: no runs"
    spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return (f"{who:9s} n={len(accs)}  top-1 mean {statistics.mean(accs):.2f}% (sd {spread:.2f}, "
            f"min {min(accs):.2f}, max {max(accs):.2f})  training median {statistics.median(trains):.2f} s, "
            f"wall median {statistics.median(walls):.1f} s, max {max(walls):.1f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipe", default="configs/fast94.yaml")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    ap.add_argument("--airbench", action="store_true", help="also run airbench.train94 (GPU only)")
    ap.add_argument("--airbench-data", type=Path, default=None,
                    help="folder for airbench's cifar10/*.pt files (default: cifarlab's cache folder)")
    ap.add_argument("--warmup", action="store_true",
                    help="one untimed run of each first (cuDNN autotuning, torch.compile), as airbench's own timing does")
    ap.add_argument("overrides", nargs="*", help="recipe overrides, e.g. train.device=cuda")
    args = ap.parse_args()
    if args.airbench and not torch.cuda.is_available():
        raise SystemExit("--airbench needs a CUDA GPU: airbench.train94 is GPU-only")
    ab_folder = args.airbench_data or cache_dir() / "airbench"
    RESULTS.mkdir(exist_ok=True)
    log = RESULTS / f"fast94_{'gpu' if torch.cuda.is_available() else 'cpu'}.jsonl"
    if args.warmup:
        run_cifarlab(args.recipe, 0, args.overrides, label="warmup")
        if args.airbench:
            run_airbench(0, ab_folder, timed=False)
    rows = []
    for seed in args.seeds:
        new = [run_cifarlab(args.recipe, seed, args.overrides)]
        if args.airbench:
            new.append(run_airbench(seed, ab_folder))
        rows += new
        with open(log, "a") as f:
            for r in new:
                f.write(json.dumps({**r, "device": device_name(), "date": time.strftime("%Y-%m-%d")}) + "\n")
    print(f"device: {device_name()}, torch {torch.__version__}, recipe {args.recipe}")
    print(describe(rows, "cifarlab"))
    if args.airbench:
        print(describe(rows, "airbench"))
        ours = statistics.median(r["train_s"] for r in rows if r["who"] == "cifarlab")
        theirs = statistics.median(r["train_s"] for r in rows if r["who"] == "airbench")
        print(f"time ratio cifarlab / airbench (training time, medians): {ours / theirs:.2f}")
    print(f"appended to {log}")


if __name__ == "__main__":
    main()
