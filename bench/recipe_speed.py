"""Training throughput of every shipped recipe on this machine, at the recipe's own settings.

The per-recipe speed table: for each recipe `cifarlab recipes` lists, one training step as its run takes
it — its model (random weights: pretrained ones cost the same arithmetic), image side (augment.crop or
augment.resize; the few-shot recipes, bit_fewshot and those extending it, as `cifarlab fewshot` runs
them: the HyperRule's crop, 128 for CIFAR, or fewshot.crop), batch size (a few-shot set smaller than the
batch is drawn with replacement, so a step still holds train.batch_size images), precision (`auto`
resolved as the run resolves it), memory format, optimiser (Muon and SLBI included), loss, lookahead and
memory allocator (`train.allocator`, applied for the whole process) — timed for --steps steps on random
inputs after --warmup steps. It prints img/s, the achieved GFLOP/s (FLOPs of forward and backward,
`torch.utils.flop_counter`) and their share of this machine's convolution peak for the recipe's
precision, measured in the same run (bench/cpu_peak.py). The data pipeline is not in it
(bench/pipeline.py measures that), nor progressive resizing's smaller early epochs (bench/fast94.py
averages a run over them).

    python bench/recipe_speed.py                       # every shipped recipe (about 15 minutes here)
    python bench/recipe_speed.py --recipes quick fast94 --steps 3
    python bench/recipe_speed.py --recipes bit_fewshot --accumulate 8   # the batch of 512 as 8 x 64
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from cpu_peak import median_seconds, peak_gflops, step_flops

from cifarlab.config.loader import load_recipe, recipe_files
from cifarlab.config.recipe import Recipe
from cifarlab.config.shipped import shipped_recipes
from cifarlab.config.validate import validate_recipe
from cifarlab.errors import CifarlabError
from cifarlab.models.whitening import airbench_init_from_data
from cifarlab.runner.run import build_model
from cifarlab.training.allocator import apply_allocator_setting
from cifarlab.training.averaging import Lookahead
from cifarlab.training.losses import get_loss
from cifarlab.training.optim import build_optimizer, peak_lr
from cifarlab.training.step import Optimisation, resolve_precision, training_step
from cifarlab.transfer.fewshot import run_recipe_for

CLASSES = {"cifar10": 10, "cifar100": 100}
FEWSHOT_BASE = "bit_fewshot"  # the recipe `cifarlab fewshot` builds on: recipes extending it train few-shot sets
FLOP_BATCH = 8  # FLOPs are counted on a few images and scaled: a step's FLOPs grow linearly with the batch


@dataclass
class StepShape:
    """What one training step of a recipe looks like."""

    num_classes: int
    side: int
    batch_size: int
    precision: str  # fp32 or bf16, `auto` resolved for this machine


def is_fewshot(path: Path) -> bool:
    """Whether the recipe file is the few-shot base recipe or builds on it (through its `extends`)."""
    return any(layer.stem == FEWSHOT_BASE for layer in recipe_files(path))


def training_recipe(path: Path) -> Recipe:
    """The recipe a run of `path` trains with: a few-shot recipe as `cifarlab fewshot` runs its largest set."""
    recipe = load_recipe(path)
    if not is_fewshot(path):
        return recipe
    num_classes = CLASSES.get(recipe.data.dataset, 10)
    return run_recipe_for(recipe, "scratch", max(recipe.fewshot.shots), recipe.seed, num_classes, image_size=32)


def step_shape(recipe: Recipe, device: torch.device) -> StepShape:
    """The model's classes, the image side, the batch and the precision a run of `recipe` trains with."""
    side = recipe.augment.crop or recipe.augment.resize or 32
    precision = resolve_precision(recipe.train.precision, device)
    if precision == "fp16" and device.type != "cuda":
        precision = "bf16"  # fp16 trains on CUDA GPUs only; on the CPU such a run is told to use bf16
    return StepShape(CLASSES.get(recipe.data.dataset, 10), side, recipe.train.batch_size, precision)


def recipe_speed(recipe: Recipe, steps: int, warmup: int) -> tuple[StepShape, float, float]:
    """(shape, images/s, GFLOP/s) of the recipe's training step on the CPU, median over `steps` steps."""
    device = torch.device("cpu")
    torch.manual_seed(0)
    shape = step_shape(recipe, device)
    model = build_model(replace(recipe, model=replace(recipe.model, weights=None)), shape.num_classes)
    if recipe.model.init == "airbench":  # identity convs and the frozen whitening layer (no weight gradient)
        images = torch.randint(0, 256, (512, 3, shape.side, shape.side), dtype=torch.uint8)
        airbench_init_from_data(model, images, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), recipe.seed, sample=512)
    memory_format = torch.channels_last if recipe.train.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    inputs = torch.randn(shape.batch_size, 3, shape.side, shape.side).contiguous(memory_format=memory_format)
    labels = torch.randint(0, shape.num_classes, (shape.batch_size,))
    few = min(FLOP_BATCH, shape.batch_size)
    flops = step_flops(model, inputs[:few], labels[:few]) * shape.batch_size / few
    lr = peak_lr(recipe.optim, shape.batch_size) if recipe.optim.lr != "find" else 1e-3
    t = recipe.train
    opt = Optimisation(model=model, optimizer=build_optimizer(model, recipe.optim, lr),
                       loss=get_loss(t.loss, t.label_smoothing), device=device, precision=shape.precision,
                       accumulate=t.accumulate, grad_clip=t.grad_clip, grad_clip_mode=t.grad_clip_mode,
                       lookahead=Lookahead(model, total_steps=1000) if t.lookahead else None)
    step = itertools.count()
    seconds = median_seconds(lambda: float(training_step(opt, inputs, labels, labels, lr, next(step)).loss),
                             steps, device, warmup)  # float(): the step is done when timed
    return shape, shape.batch_size / seconds, flops / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=None, help="names as `cifarlab recipes` lists them "
                        "(default: every one)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--allocator", choices=["auto", "system"], default="auto",
                        help="train.allocator for every recipe (process-wide; bench/allocator.py compares the two)")
    parser.add_argument("--accumulate", type=int, default=None,
                        help="train.accumulate for every recipe: each step in this many micro-batches, to see whether "
                             "splitting a large batch pays on this machine (default: the recipe's own)")
    args = parser.parse_args()
    apply_allocator_setting(args.allocator)  # as a run applies its recipe's train.allocator
    shipped = shipped_recipes()
    names = args.recipes or list(shipped)
    unknown = [name for name in names if name not in shipped]
    if unknown:
        raise SystemExit(f"recipe_speed: unknown recipe(s) {', '.join(unknown)}; `cifarlab recipes` lists them")
    peak = peak_gflops(torch.device("cpu"))
    print(f"peak GFLOP/s on this CPU ({torch.get_num_threads()} threads): "
          + ", ".join(f"{key} {value:.0f}" for key, value in peak.items()))
    print("| recipe | model | side | batch | precision | img/s | GFLOP/s | % of conv peak |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        recipe = training_recipe(shipped[name])
        if args.accumulate:
            recipe = replace(recipe, train=replace(recipe.train, accumulate=args.accumulate))
            try:  # the recipe check a run makes: the batch must split into equal micro-batches
                validate_recipe(recipe, check_machine=False)
            except CifarlabError as error:
                raise SystemExit(f"recipe_speed: {name}: {error}") from None
        shape, rate, gflops = recipe_speed(recipe, args.steps, args.warmup)
        share = gflops / peak[f"{shape.precision}_conv"]
        parts = recipe.train.accumulate
        batch = f"{shape.batch_size}" if parts == 1 else f"{shape.batch_size} ({parts} x {shape.batch_size // parts})"
        print(f"| {name} | {recipe.model.name} | {shape.side} | {batch} | {shape.precision} | "
              f"{rate:,.1f} | {gflops:.0f} | {share:.0%} |", flush=True)


if __name__ == "__main__":
    main()
