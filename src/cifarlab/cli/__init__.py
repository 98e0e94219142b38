"""The `cifarlab` command: each verb lives in its own module here, parses its arguments and calls one function.

A verb module has `add_parser(subparsers)`, which adds its parser and sets `func` to a
`run(args) -> int`. Adding a verb is adding a module and its name to `VERBS`.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cifarlab import __version__
from cifarlab.cli.words import is_override
from cifarlab.errors import CifarlabError

VERBS = (
    "train", "lr-find", "fewshot", "eval", "models", "data", "recipes", "keys", "export", "convert-checkpoint",  # runs and files
    "sweep", "tune", "report", "compare", "study",  # many runs
    "explain", "landscape", "robustness", "predict", "prune",  # analysing a run
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cifarlab", description="Image-classification experiments on CIFAR-scale data.")
    parser.add_argument("--version", action="version", version=f"cifarlab {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True)
    for verb in VERBS:
        importlib.import_module(f"cifarlab.cli.{verb.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may follow options: `cifarlab fewshot RECIPE --shots 1 5 train.batch_size=128`.
    if extra and hasattr(args, "overrides") and all(is_override(word) for word in extra):
        args.overrides = list(args.overrides) + extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except CifarlabError as exc:
        print(f"cifarlab: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("cifarlab: interrupted", file=sys.stderr)
        return 130
