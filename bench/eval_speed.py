"""Evaluation throughput as `cifarlab eval`, `predict`, `robustness eval` and `prune` score a run, three ways.

For each recipe, `predict` scores --images random uint8 images at the recipe's evaluation batch size,
test-time augmentation and geometry, with the recipe's model at random weights (trained weights cost the
same arithmetic), in a fresh process per measurement (glibc's malloc settings cannot be undone inside one):

- `fp32 system`: full precision, contiguous memory, glibc's defaults: how `robustness eval`, `predict`
  and `eval` of a checkpoint file scored a run before 2026-12-03;
- `run system`: the run's own precision (`train.precision`, bf16 where it trained in bf16) and memory
  format (`train.channels_last`), as its final test evaluation scores it, with glibc's defaults;
- `run auto`: the same with `train.allocator: auto`, what every evaluation command does now.

The order of the three rotates round by round so a change in the machine's load hits each; the table
gives medians over the rounds, the ratios of `run auto` to the other two, and the process's minor page
faults, system CPU time and peak memory.

    python bench/eval_speed.py                             # five recipes, 3 rounds (about 10 minutes here)
    python bench/eval_speed.py --recipes quick --images 1000 --rounds 2
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import replace

from allocator import alternate, median, process_cells

SETTINGS = ("fp32 system", "run system", "run auto")
DEFAULT_RECIPES = ["quick", "fast94", "fdu/resnet18", "dl4ds/cpu/scratch", "bit_upstream_cifar100_cpu"]


def measure_child(name: str, setting: str, count: int) -> None:
    """In a fresh process: score `count` images with the recipe's model as `setting` says; print one JSON line."""
    import torch
    from recipe_speed import CLASSES

    from cifarlab.config.loader import load_recipe
    from cifarlab.config.shipped import shipped_recipes
    from cifarlab.evaluation.predict import predict
    from cifarlab.evaluation.settings import run_settings
    from cifarlab.runner.run import build_model
    from cifarlab.training.allocator import apply_allocator_setting

    precision, allocator = setting.split()
    applied = apply_allocator_setting(allocator)
    recipe = load_recipe(shipped_recipes()[name])
    if precision == "fp32":
        recipe = replace(recipe, train=replace(recipe.train, precision="fp32", channels_last=False))
    torch.manual_seed(0)
    model = build_model(replace(recipe, model=replace(recipe.model, weights=None)),
                        CLASSES.get(recipe.data.dataset, 10))
    settings = run_settings(model, recipe, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    predict(model, images[: settings.batch_size], settings)  # oneDNN's kernels, first batch
    start = time.perf_counter()
    predict(model, images, settings)
    seconds = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"applied": applied, "img_s": count / seconds, "faults": usage.ru_minflt,
                      "sys_s": usage.ru_stime, "peak_mib": usage.ru_maxrss / 1024, "tta": settings.tta,
                      "batch": settings.batch_size, "side": (settings.preprocessing.resize or (32,))[0],
                      "precision": "bf16" if settings.autocast_dtype is not None else "fp32"}))


def measure(name: str, setting: str, count: int) -> dict:
    command = [sys.executable, __file__, "--child", name, setting, "--images", str(count)]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=DEFAULT_RECIPES, help="names as `cifarlab recipes` lists them")
    parser.add_argument("--images", type=int, default=2000, help="images scored per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="processes per setting; the table gives medians")
    parser.add_argument("--child", nargs=2, metavar=("RECIPE", "SETTING"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        measure_child(args.child[0], args.child[1], args.images)
        return
    from cifarlab.config.shipped import shipped_recipes

    unknown = [name for name in args.recipes if name not in shipped_recipes()]
    if unknown:
        raise SystemExit(f"eval_speed: unknown recipe(s) {', '.join(unknown)}; `cifarlab recipes` lists them")
    print(f"{args.images} images per measurement, {args.rounds} rounds, medians; img/s of `predict` with the "
          "recipe's batch, TTA and side")
    print("| recipe | batch | TTA | side | run precision | img/s fp32 system | img/s run system | img/s run auto | "
          "run auto / fp32 system | run auto / run system | minor faults run auto / run system | "
          "system CPU s run auto / run system | peak MiB run auto / run system |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in args.recipes:
        runs = alternate(args.rounds, lambda setting, round_index, name=name: measure(name, setting, args.images),
                         SETTINGS)
        first = runs["run auto"][0]
        rates = {setting: median(runs, setting, "img_s") for setting in SETTINGS}
        print(f"| {name} | {first['batch']} | {first['tta']} | {first['side']} | {first['precision']} | "
              + " | ".join(f"{rates[setting]:,.1f}" for setting in SETTINGS)
              + f" | {rates['run auto'] / rates['fp32 system']:.2f}x | {rates['run auto'] / rates['run system']:.2f}x | "
              + process_cells(runs, "run auto", "run system") + " |", flush=True)


if __name__ == "__main__":
    main()
