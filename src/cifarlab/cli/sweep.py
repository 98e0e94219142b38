"""`cifarlab sweep`: train every combination of a grid of overrides, skip finished runs, resume stopped ones."""

from __future__ import annotations

import argparse
from pathlib import Path

from cifarlab.cli.slurm_options import add_launcher_arguments, slurm_settings
from cifarlab.cli.words import is_override
from cifarlab.sweeps import MAX_RUNS


def run(args: argparse.Namespace) -> int:
    from cifarlab.sweeps.grid import check_run_count
    from cifarlab.sweeps.grid_sweep import run_sweep, sweep_spec

    spec = sweep_spec(args.recipe, args.grid or [], args.overrides)
    out = Path(args.out) if args.out else spec.out or Path("sweeps") / Path(args.recipe).stem
    count = check_run_count(spec.grid, args.max_runs)
    # Said at once: resolving every point's recipe takes a while for a large grid.
    print(f"sweep: {count:,} run{'s' if count != 1 else ''} into {out}", flush=True)
    slurm = slurm_settings(args)
    run_sweep(spec, out, jobs=args.jobs, launcher=args.launcher, slurm=slurm, max_runs=args.max_runs)
    summary = out / "summary.md"
    if summary.is_file():
        print(summary.read_text())
    print(f"sweep folder: {out}  (results.csv, summary.md, summary.csv, runs/)")
    return 0


def _axis(word: str) -> str:
    if not is_override(word):
        raise argparse.ArgumentTypeError(f"{word!r} is not a grid axis; write key=value1,value2 (e.g. seed=0,1,2)")
    return word


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="train a grid of recipe overrides (skips finished runs, resumes stopped ones)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("examples:\n"
                "  cifarlab sweep configs/fdu/base.yaml --grid model.name=resnet18,vgg11_bn seed=0,1,2 --out sweeps/zoo\n"
                "  cifarlab sweep configs/sweeps/fdu_zoo.yaml --jobs 2 train.epochs=30\n"
                "  cifarlab sweep configs/sweeps/fdu_zoo.yaml --launcher slurm --slurm-partition gpu --slurm-gpus 1 "
                "--slurm-time 720\n"
                "Run the same command again to finish a stopped sweep; then `cifarlab report SWEEP_FOLDER`."))
    p.add_argument("recipe", help="recipe YAML, or a sweep file (configs/sweeps/*.yaml with recipe: and grid:)")
    p.add_argument("overrides", nargs="*", help="key=value overrides fixed for every run, e.g. train.epochs=30")
    p.add_argument("--grid", nargs="+", type=_axis, metavar="KEY=V1,V2",
                   help="axes of the grid; every combination is one run (a one-value axis is a fixed override)")
    p.add_argument("--out", help="sweep folder (default: the sweep file's out:, else sweeps/<recipe name>)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at once in local worker processes (default 1)")
    p.add_argument("--max-runs", type=int, default=MAX_RUNS, metavar="N",
                   help=f"refuse a grid of more than N runs before anything is written (default {MAX_RUNS:,})")
    add_launcher_arguments(p, "run", "this machine")
    p.set_defaults(func=run)
