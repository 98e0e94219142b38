"""`cifarlab lr-find`: the LR range test of a recipe on its own, writing lr_find.json and lr_find.png."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from cifarlab.config import load_recipe
    from cifarlab.runner.lr_find import check_range, find_lr

    out = Path(args.out) if args.out else None
    if out is not None:  # bad numbers are refused before the recipe and its data are loaded
        check_range(args.start, args.end, args.steps, out)
    recipe = load_recipe(args.recipe, args.overrides)
    out = out or Path("lr_find") / recipe.name
    finding = find_lr(recipe, out, start_lr=args.start, end_lr=args.end, num_steps=args.steps)
    print(f"lr_max {finding.lr_max:.3g}  ({finding.lr_max_rule})")
    print(f"lr_min {finding.lr_min:.3g}  ({finding.lr_min_rule})")
    print(f"written: {out / 'lr_find.json'}, {out / 'lr_find.png'}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lr-find", help="LR range test of a recipe: lr_max and lr_min for One-Cycle, nothing trained",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=("examples:\n  cifarlab lr-find era_resnet9 --out lrf\n"
                               "  cifarlab lr-find quick --steps 50 --start 1e-6 --end 1 --out lrf"))
    p.add_argument("recipe", help="YAML recipe file, or the name of a shipped recipe (`cifarlab recipes`)")
    p.add_argument("overrides", nargs="*", help="key=value overrides with dotted keys, e.g. train.batch_size=256")
    p.add_argument("--start", type=float, default=1e-7, help="first lr of the range (default 1e-7)")
    p.add_argument("--end", type=float, default=10.0, help="last lr of the range (default 10)")
    p.add_argument("--steps", type=int, default=100, help="training steps, the lr rising exponentially (default 100)")
    p.add_argument("--out", help="folder for lr_find.json and lr_find.png (default lr_find/<recipe name>)")
    p.set_defaults(func=run)
