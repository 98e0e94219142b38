"""`cifarlab train`: one run from a recipe, or the continuation of a stopped run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cifarlab.errors import CifarlabError


def run(args: argparse.Namespace) -> int:
    from cifarlab.config import load_recipe, recipe_to_yaml

    if args.resume:
        if args.recipe or args.overrides:
            raise CifarlabError("--resume continues a run with its own recipe.yaml; drop the recipe and overrides")
        from cifarlab.runs.folder import load_run_recipe

        recipe = load_run_recipe(Path(args.resume))
    elif not args.recipe:
        raise CifarlabError("give a recipe (e.g. `cifarlab train quick`; `cifarlab recipes` lists them) or --resume RUN")
    else:
        recipe = load_recipe(args.recipe, args.overrides)
    if args.print_config:
        print(recipe_to_yaml(recipe), end="")
        return 0
    from cifarlab.runner.run import (
        run_recipe,  # the training stack, only when training
    )

    if args.allow_changed and not args.resume:
        raise CifarlabError("--allow-changed applies to --resume RUN only; drop it for a new run")
    result = run_recipe(recipe, resume=Path(args.resume) if args.resume else None, allow_changed=args.allow_changed)
    if result.status == "stopped":
        print(f"stopped; checkpoint written. Continue with: cifarlab train --resume {result.run_dir}", file=sys.stderr)
        return result.exit_code or 130
    print(f"run folder: {result.run_dir}")
    if result.test:
        print(f"test top-1 {result.test['top1']:.2%}  top-5 {result.test['top5']:.2%}  loss {result.test['loss']:.4f}")
    plots = ", ".join(name for name in _plot_names() if (result.run_dir / name).is_file())
    print(f"report: {result.run_dir / 'report.md'}" + (f"  (plots: {plots})" if plots else ""))
    return 0


def _plot_names() -> list[str]:
    from cifarlab import runs

    return [runs.CURVES] + [plot(split) for split in ("val", "test")
                            for plot in (runs.confusion_plot_file, runs.misclassified_plot_file)]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train from a recipe", formatter_class=argparse.RawDescriptionHelpFormatter, epilog=(
        "examples:\n  cifarlab train quick\n  cifarlab train configs/era_resnet9.yaml optim.lr=0.01 train.epochs=2\n"
        "  cifarlab train fdu/resnet18 --print-config\n  cifarlab train --resume runs/quick\n"
        "  cifarlab train --resume runs/quick --allow-changed train.epochs   (after raising epochs in its recipe.yaml)"))
    p.add_argument("recipe", nargs="?", help="YAML recipe file, or the name of a shipped recipe (`cifarlab recipes`)")
    p.add_argument("overrides", nargs="*", help="key=value overrides with dotted keys, e.g. optim.lr=0.05 (`cifarlab keys`)")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder exactly where it stopped")
    p.add_argument("--allow-changed", nargs="+", default=[], metavar="KEY",
                   help="with --resume: recipe keys edited in the run's recipe.yaml that are safe to change "
                        "(e.g. train.epochs to extend a run)")
    p.add_argument("--print-config", action="store_true",
                   help="print the fully resolved recipe as YAML and exit without training or writing anything")
    p.set_defaults(func=run)
