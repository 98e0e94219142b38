"""`cifarlab compare`: train the variants of a study in lockstep (one initialisation, identical batches)."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from cifarlab.studies.lockstep import COMPARE_JSON, compare, read_study

    study = read_study(args.study)
    out = Path(args.out) if args.out else study.out or Path("studies") / Path(args.study).stem
    result = compare(study, out, args.overrides)
    print(result.summary_markdown)
    print(f"study folder: {out}  ({COMPARE_JSON}, curves.png, summary.md, summary.csv, results.csv, runs/)")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="train variants of a recipe from one initialisation on identical batches, side by side",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("examples:\n"
                "  cifarlab compare configs/fdu/studies/activation_cpu.yaml      # or by name: fdu/studies/activation_cpu\n"
                "  cifarlab compare configs/fdu/studies/optimizer.yaml --out studies/optimizer train.epochs=20\n"
                "A study file holds `recipe:`, `vary: {key: [values]}` or `variants: {name: {key: value}}`, and\n"
                "optionally `overrides:`, `seeds: [0, 1, 2]` and `out:`. compare.json records, per run, the sha256 of\n"
                "its initial weights and of its batches; run the same command again to finish a stopped study."))
    p.add_argument("study", help="study YAML file, or a shipped study by name (fdu/studies/loss_cpu)")
    p.add_argument("overrides", nargs="*", help="key=value overrides for every variant, e.g. train.epochs=5")
    p.add_argument("--out", help="study folder (default: the study file's out:, else studies/<study file name>)")
    p.set_defaults(func=run)
