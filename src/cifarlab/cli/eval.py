"""`cifarlab eval`: score a run's checkpoint, or a bare checkpoint file, on a split, with or without TTA."""

from __future__ import annotations

import argparse
from pathlib import Path

from cifarlab.errors import CifarlabError


def run(args: argparse.Namespace) -> int:
    target = Path(args.run)
    bare = target.is_file() and (args.data or args.model or args.overrides or not _in_run_folder(target))
    if bare:
        from cifarlab.runner.evaluate_file import (
            default_output_folder,
            evaluate_checkpoint_file,
        )

        out = Path(args.out) if args.out else default_output_folder(target)
        result = evaluate_checkpoint_file(target, dataset=args.data, model=args.model, overrides=args.overrides,
                                          split=args.split, tta=args.tta, out_dir=out)
    else:
        if args.data or args.model or args.overrides or args.out:
            raise CifarlabError("--data, --model, --out and key=value overrides are for a bare checkpoint file; "
                                "a run folder evaluates with its own recipe: drop them")
        from cifarlab.runner.evaluate import evaluate_saved

        result = evaluate_saved(args.run, split=args.split, tta=args.tta)
    print(f"{args.split}: top-1 {result['top1']:.2%}  top-5 {result['top5']:.2%}  loss {result['loss']:.4f}  ECE {result['ece']:.4f}")
    if bare:
        print(f"wrote: {out}")
    return 0


def _in_run_folder(checkpoint: Path) -> bool:
    from cifarlab import runs

    return (checkpoint.parent / runs.RECIPE).is_file()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("eval", help="evaluate a run or checkpoint", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=("examples:\n  cifarlab eval runs/quick --split test --tta flip\n"
                               "  cifarlab eval downloads/best.pt --data cifar100\n"
                               "  cifarlab eval model.pt --model airbench94 model.options.width_multiplier=0.5"))
    p.add_argument("run", help="run folder (uses best.pt, else last.pt) or a checkpoint file")
    p.add_argument("overrides", nargs="*", help="checkpoint file only: recipe overrides, e.g. model.options.width_multiplier=0.5")
    p.add_argument("--split", choices=("val", "test"), default="test")
    p.add_argument("--tta", choices=("none", "flip", "flip_translate", "shift16"), default=None,
                   help="test-time augmentation (default: the recipe's eval.tta)")
    p.add_argument("--data", help="checkpoint file only: data set to score on (default: its recipe's, else cifar10)")
    p.add_argument("--model", help="checkpoint file only: model name, when the file does not record it")
    p.add_argument("--out", help="checkpoint file only: folder for eval_<split>.json and plots (default NAME-eval beside it)")
    p.set_defaults(func=run)
