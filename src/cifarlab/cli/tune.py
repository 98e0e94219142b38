"""`cifarlab tune`: a hyperparameter search on Optuna, each trial an ordinary run, poor ones pruned early."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cifarlab.cli.slurm_options import add_launcher_arguments, slurm_settings
from cifarlab.sweeps import MAX_RUNS


def run(args: argparse.Namespace) -> int:
    from cifarlab.tuning.optuna_extra import import_optuna

    import_optuna()  # before anything else: without the extra, one line says how to install it
    from cifarlab.sweeps.grid import refuse_too_many_runs
    from cifarlab.tuning.study import default_study_folder, run_study
    from cifarlab.tuning.tune_file import read_tune_file

    spec = read_tune_file(args.tune_file, args.overrides)
    if args.trials is not None:
        spec.trials = args.trials
    out = Path(args.out) if args.out else default_study_folder(spec, args.tune_file)
    refuse_too_many_runs(spec.trials, args.max_runs, f"this study would run {spec.trials:,} trials", "lower trials")
    print(f"tune: {spec.trials:,} finished trials in {out}", flush=True)
    slurm = slurm_settings(args)
    result = run_study(spec, out, jobs=args.jobs, storage=args.storage, launcher=args.launcher, slurm=slurm)
    if result.exit_code:
        print(f"stopped; the cut-off trial will be tried again. Continue with the same command: cifarlab tune {args.tune_file}"
              + (f" --out {out}" if args.out else ""), file=sys.stderr)
        return result.exit_code
    print(result.report.best)
    print(f"study folder: {out}  ({', '.join(f.name for f in result.report.files)}, trials/)")
    if args.storage is None:
        print(f"dashboard: optuna-dashboard sqlite:///{out / 'study.db'}")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text}: give 1 or more")
    return value


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune", help="search hyperparameters with Optuna (each trial a run; poor trials pruned on validation)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("examples:\n"
                "  cifarlab tune tunes/era_lr_wd --trials 30 --out tunes/era\n"
                "  cifarlab tune my_tune.yaml --jobs 2 train.device=cpu\n"
                "  cifarlab tune my_tune.yaml --storage /shared/study.journal --launcher slurm --jobs 8 --slurm-gpus 1\n"
                "Run the same command again to continue a stopped study; then `cifarlab report STUDY_FOLDER`.\n"
                "A tune file has recipe:, overrides:, space:, metric: (val.top1 or val.loss), trials:, sampler: "
                "(tpe, random, grid), pruner: (median, asha, none) and out:; see the README."))
    p.add_argument("tune_file", help="tune file (YAML with recipe: and space:), or a shipped one (tunes/era_lr_wd)")
    p.add_argument("overrides", nargs="*", help="key=value overrides fixed for every trial, after the file's own")
    p.add_argument("--out", help="study folder (default: the file's out:, else tunes/<tune file name>)")
    p.add_argument("--trials", type=_positive, help="finished trials the study ends with (default: the file's trials:)")
    p.add_argument("--jobs", type=int, default=1, help="workers on the study at once (local processes, or SLURM jobs)")
    p.add_argument("--max-runs", type=int, default=MAX_RUNS, metavar="N",
                   help=f"refuse a study of more than N trials before anything is written (default {MAX_RUNS:,})")
    p.add_argument("--storage", help="Optuna storage URL, or a journal file path for a shared file system "
                                     "(default sqlite:///STUDY_FOLDER/study.db)")
    add_launcher_arguments(p, "worker", "this machine")
    p.set_defaults(func=run)
