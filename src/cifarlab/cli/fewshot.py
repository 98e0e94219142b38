"""`cifarlab fewshot`: a BiT few-shot transfer sweep over weights x shots x seeds."""

from __future__ import annotations

import argparse
from pathlib import Path

from cifarlab.cli.words import is_override
from cifarlab.errors import CifarlabError


def run(args: argparse.Namespace) -> int:
    from cifarlab.config import load_recipe
    from cifarlab.transfer.fewshot import run_sweep

    overrides = list(args.overrides)
    if args.recipe and "=" in args.recipe:  # no recipe given: the first word is already an override
        overrides.insert(0, args.recipe)
        args.recipe = None
    # `--shots 1 5 train.batch_size=128`: argparse gives the override to --shots; hand it back.
    weights = [w for w in args.weights or [] if not is_override(w)]
    shots = [s for s in args.shots or [] if not is_override(s)]
    overrides += [w for w in (args.weights or []) + (args.shots or []) if is_override(w)]
    if weights:
        overrides.append(f"fewshot.weights=[{', '.join(weights)}]")
    if shots:
        bad = [s for s in shots if not s.isdigit() or int(s) < 1]
        if bad:
            raise CifarlabError(f"--shots takes whole numbers of examples per class, e.g. --shots 1 5 10; got {' '.join(bad)}")
        overrides.append(f"fewshot.shots=[{', '.join(shots)}]")
    if args.seeds:
        overrides.append(f"fewshot.seeds={args.seeds}")
    if args.dataset:
        overrides.append(f"data.dataset={args.dataset}")
    recipe = load_recipe(args.recipe or "bit_fewshot", overrides)  # the shipped recipe: works outside a checkout
    out = Path(args.out or Path("sweeps") / (args.name or recipe.name))
    run_sweep(recipe, out)
    print((out / "summary.md").read_text())
    print(f"sweep folder: {out}  (results.csv, summary.md, figure6.png)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("fewshot", help="BiT few-shot transfer sweep: weights x shots x seeds",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=("examples:\n  cifarlab fewshot --weights BiT-M-R50x1 --dataset cifar10 --shots 1 2 5 10 --seeds 5\n"
                               "  cifarlab fewshot bit_fewshot_r50x3   (seeds/000's notebook protocol; needs the BiT-M-R50x3 weights)\n"
                               "  cifarlab fewshot configs/bit_transfer_offline.yaml"))
    p.add_argument("recipe", nargs="?", help="sweep recipe (default configs/bit_fewshot.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.batch_size=128 train.accumulate=4")
    p.add_argument("--weights", nargs="+", help="official names (BiT-M-R50x1), .npz files, or scratch")
    p.add_argument("--dataset", help="cifar10, cifar100 or folder:PATH")
    p.add_argument("--shots", nargs="+", help="examples per class, e.g. 1 5 10")
    p.add_argument("--seeds", type=int, help="runs per setting (seeds 0..N-1)")
    p.add_argument("--name", help="sweep folder name under sweeps/ (default: the recipe name)")
    p.add_argument("--out", help="sweep folder (default sweeps/<name>)")
    p.set_defaults(func=run)
