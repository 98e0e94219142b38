"""`cifarlab report`: compare run and sweep folders in one table, with overlaid curves and accuracy-vs-cost plots;
or report a `cifarlab tune` study folder (its trials, best trial, optimisation history and parameter importance)."""

from __future__ import annotations

import argparse
from pathlib import Path


def default_out(paths: list[str]) -> Path:
    """A single sweep folder keeps its report beside its results; anything else goes to reports/<first name>."""
    from cifarlab.sweeps.sweep import RUNS

    first = Path(paths[0])
    if len(paths) == 1 and (first / RUNS).is_dir():
        return first
    return Path("reports") / (first.resolve().name + (f"+{len(paths) - 1}" if len(paths) > 1 else ""))


def run(args: argparse.Namespace) -> int:
    from cifarlab.reports.compare_runs import compare_runs
    from cifarlab.tuning.storage import is_study_folder

    if len(args.paths) == 1 and is_study_folder(args.paths[0]):
        return _study_report(args)
    out = Path(args.out) if args.out else default_out(args.paths)
    comparison = compare_runs(args.paths, out)
    print(comparison.markdown)
    print(f"report folder: {out}  ({', '.join(f.name for f in comparison.files)})")
    return 0


def _study_report(args: argparse.Namespace) -> int:
    """A `cifarlab tune` study folder: its trial table, best trial and plots, beside its trials (or in --out)."""
    from cifarlab.tuning.report import write_study_report

    report = write_study_report(args.paths[0], Path(args.out) if args.out else None)
    print(report.markdown)
    print(f"report folder: {report.files[0].parent}  ({', '.join(f.name for f in report.files)})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="compare runs and sweeps: table, training curves, accuracy vs cost",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=("examples:\n  cifarlab report sweeps/fdu_zoo\n"
                               "  cifarlab report runs/resnet18 runs/vgg11_bn --out reports/two_models\n"
                               "  cifarlab report tunes/era_lr_wd    # a study folder of `cifarlab tune`"))
    p.add_argument("paths", nargs="+", help="run folders, sweep folders (their runs/) or folders of runs; "
                                            "or one study folder of `cifarlab tune`")
    p.add_argument("--out", help="where report.md, report.csv, curves.png and accuracy_vs_cost.png go "
                                 "(default: the sweep or study folder when one is given, else reports/<name>)")
    p.set_defaults(func=run)
