"""The `cifarlab` command: each verb parses its arguments and calls one function."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cifarlab.errors import CifarlabError


def _train(args) -> int:
    from cifarlab.config import load_recipe
    from cifarlab.experiments.run import load_run_recipe, run_recipe

    if args.resume:
        if args.recipe or args.overrides:
            raise CifarlabError("--resume continues a run with its own recipe.yaml; drop the recipe and overrides")
        recipe = load_run_recipe(Path(args.resume))
    elif not args.recipe:
        raise CifarlabError("give a recipe (e.g. `cifarlab train configs/quick.yaml`) or --resume RUN")
    else:
        recipe = load_recipe(args.recipe, args.overrides)
    result = run_recipe(recipe, resume=Path(args.resume) if args.resume else None)
    if result.status == "stopped":
        print(f"stopped; checkpoint written. Continue with: cifarlab train --resume {result.run_dir}", file=sys.stderr)
        return 130
    print(f"run folder: {result.run_dir}")
    if result.test:
        print(f"test top-1 {result.test['top1']:.2%}  top-5 {result.test['top5']:.2%}  loss {result.test['loss']:.4f}")
    print(f"report: {result.run_dir / 'report.md'}  (plots: curves.png, confusion_test.png, misclassified_test.png)")
    return 0


def _fewshot(args) -> int:
    from dataclasses import replace

    from cifarlab.config import load_recipe
    from cifarlab.config.recipe import Recipe
    from cifarlab.experiments.fewshot import run_sweep

    overrides = list(args.overrides)
    if args.recipe and "=" in args.recipe:  # no recipe given: the first word is already an override
        overrides.insert(0, args.recipe)
        args.recipe = None
    # `--shots 1 5 train.batch_size=128`: argparse gives the override to --shots; hand it back.
    weights = [w for w in args.weights or [] if not _is_override(w)]
    shots = [s for s in args.shots or [] if not _is_override(s)]
    overrides += [w for w in (args.weights or []) + (args.shots or []) if _is_override(w)]
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
    recipe = load_recipe(args.recipe or _default_fewshot_recipe(), overrides)
    out = Path(args.out or Path("sweeps") / (args.name or recipe.name))
    run_sweep(recipe, out)
    print((out / "summary.md").read_text())
    print(f"sweep folder: {out}  (results.csv, summary.md, figure6.png)")
    return 0


def _is_override(word: str) -> bool:
    """`section.key=value`, as opposed to a file name, an official weights name or an option."""
    key = word.split("=", 1)[0]
    return "=" in word and key.replace(".", "").replace("_", "").isalnum()


def _default_fewshot_recipe() -> Path:
    path = Path(__file__).resolve().parents[2] / "configs" / "bit_fewshot.yaml"
    if not path.is_file():
        raise CifarlabError("give a few-shot recipe, e.g. `cifarlab fewshot configs/bit_fewshot.yaml --weights ...`")
    return path


def _eval(args) -> int:
    from cifarlab.experiments.run import evaluate_saved

    result = evaluate_saved(args.run, split=args.split, tta=args.tta)
    print(f"{args.split}: top-1 {result['top1']:.2%}  top-5 {result['top5']:.2%}  loss {result['loss']:.4f}  ECE {result['ece']:.4f}")
    return 0


def _models(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from cifarlab.models.summary import model_table

    table = Table(title="cifarlab models (10 classes)")
    for col in ("name", "parameters", "multiply-adds", "input"):
        table.add_column(col, justify="left" if col == "name" else "right")
    for row in model_table():
        table.add_row(row["name"], f"{row['params']:,}", f"{row['macs'] / 1e6:,.1f} M", "x".join(map(str, row["input_size"])))
    Console().print(table)
    return 0


def _data(args) -> int:
    from cifarlab.data.grid import sample_grid
    from cifarlab.data.sources import dataset_info, load_dataset

    if args.action == "info":
        info = dataset_info(args.name, root=args.root)
        for key, value in info.items():
            print(f"{key}: {value}")
        return 0
    out = Path(args.out or f"{args.name.replace(':', '_').replace('/', '_')}_grid.png")
    sample_grid(load_dataset(args.name, root=args.root), out, per_class=args.per_class, seed=args.seed)
    print(f"wrote {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="cifarlab", description="Image-classification experiments on CIFAR-scale data.")
    sub = parser.add_subparsers(dest="verb", required=True)

    p = sub.add_parser("train", help="train from a recipe", formatter_class=fmt, epilog=(
        "examples:\n  cifarlab train configs/quick.yaml\n  cifarlab train configs/era_resnet9.yaml optim.lr=0.01 train.epochs=2\n"
        "  cifarlab train --resume runs/quick"))
    p.add_argument("recipe", nargs="?", help="YAML recipe file")
    p.add_argument("overrides", nargs="*", help="key=value overrides with dotted keys, e.g. optim.lr=0.05")
    p.add_argument("--resume", metavar="RUN", help="continue the run in this folder exactly where it stopped")
    p.set_defaults(func=_train)

    p = sub.add_parser("fewshot", help="BiT few-shot transfer sweep: weights x shots x seeds", formatter_class=fmt,
                       epilog=("examples:\n  cifarlab fewshot --weights BiT-M-R50x1 --dataset cifar10 --shots 1 2 5 10 --seeds 5\n"
                               "  cifarlab fewshot configs/bit_transfer_offline.yaml"))
    p.add_argument("recipe", nargs="?", help="sweep recipe (default configs/bit_fewshot.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.batch_size=128 train.accumulate=4")
    p.add_argument("--weights", nargs="+", help="official names (BiT-M-R50x1), .npz files, or scratch")
    p.add_argument("--dataset", help="cifar10, cifar100 or folder:PATH")
    p.add_argument("--shots", nargs="+", help="examples per class, e.g. 1 5 10")
    p.add_argument("--seeds", type=int, help="runs per setting (seeds 0..N-1)")
    p.add_argument("--name", help="sweep folder name under sweeps/ (default: the recipe name)")
    p.add_argument("--out", help="sweep folder (default sweeps/<name>)")
    p.set_defaults(func=_fewshot)

    p = sub.add_parser("eval", help="evaluate a run or checkpoint", formatter_class=fmt,
                       epilog="example:\n  cifarlab eval runs/quick --split test --tta flip")
    p.add_argument("run", help="run folder (uses best.pt, else last.pt) or a checkpoint file")
    p.add_argument("--split", choices=("val", "test"), default="test")
    p.add_argument("--tta", choices=("none", "flip", "flip_translate", "shift16"), default=None,
                   help="test-time augmentation (default: the recipe's eval.tta)")
    p.set_defaults(func=_eval)

    p = sub.add_parser("models", help="list every model with parameters and multiply-adds", formatter_class=fmt,
                       epilog="example:\n  cifarlab models")
    p.set_defaults(func=_models)

    p = sub.add_parser("data", help="dataset information and sample grids", formatter_class=fmt,
                       epilog="examples:\n  cifarlab data info cifar10\n  cifarlab data grid cifar100 --out grid.png")
    p.add_argument("action", choices=("info", "grid"))
    p.add_argument("name", help="cifar10, cifar100 or folder:PATH")
    p.add_argument("--root", help="data folder (default $CIFARLAB_DATA, then ~/.cache/cifarlab)")
    p.add_argument("--out", help="grid: PNG path")
    p.add_argument("--per-class", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_data)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Overrides may follow options: `cifarlab fewshot RECIPE --shots 1 5 train.batch_size=128`.
    if extra and hasattr(args, "overrides") and all(_is_override(word) for word in extra):
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
