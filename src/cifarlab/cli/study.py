"""`cifarlab study bn`: the BatchNorm landscape study (VGG-A with and without BatchNorm, Santurkar et al. 2018)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from cifarlab.config.shipped import RECIPES_DIR

DEFAULT_RECIPE = RECIPES_DIR / "fdu" / "studies" / "bn_cpu.yaml"


def run(args: argparse.Namespace) -> int:
    from cifarlab.analysis.bn_study import StudyRun, run_bn_study
    from cifarlab.analysis.bn_study_report import write_bn_study
    from cifarlab.config import load_recipe
    from cifarlab.studies.lockstep import study_path

    overrides = list(args.overrides) + ([f"train.epochs={args.epochs}"] if args.epochs is not None else [])
    recipe = load_recipe(study_path(args.recipe), overrides)
    out = Path(args.out) if args.out else Path("studies") / recipe.name
    started = time.perf_counter()

    def report(study_run: StudyRun) -> None:
        print(f"{study_run.model} lr={study_run.lr:g}: val top-1 {study_run.val_top1:.2%}, {study_run.time_s:.0f} s",
              file=sys.stderr, flush=True)

    study = run_bn_study(recipe, args.lrs, args.step_multiples, args.probe_every, on_run=report)
    wall = time.perf_counter() - started
    table = write_bn_study(study, out, dict(recipe=str(args.recipe), overrides=overrides, wall_s=round(wall, 1)))
    print(table)
    print(f"study folder: {out}  (loss_landscape.png, gradient_predictiveness.png, beta_smoothness.png, "
          f"bn_study.npz, bn_study.md); {wall:.0f} s")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "study", help="the BatchNorm landscape study: VGG-A with and without BN, probed along the gradient",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("examples:\n"
                "  cifarlab study bn                                   # CPU-sized: quarter-width nets, 2,560 images\n"
                "  cifarlab study bn --lrs 1e-3 1e-4 --epochs 5 --out studies/bn\n"
                "  cifarlab study bn --recipe fdu/studies/bn --probe-every 10 train.device=cuda   # full size\n"
                "Both nets train at every learning rate from one initialisation per net, on the same batches."))
    p.add_argument("kind", choices=["bn"], help="which study: bn (Santurkar et al. 2018 on VGG-A)")
    p.add_argument("overrides", nargs="*", help="key=value recipe overrides, e.g. data.train_limit=5000")
    p.add_argument("--recipe", default=str(DEFAULT_RECIPE),
                   help="recipe giving data, optimiser, batch size and model.options (default: the CPU-sized "
                        "configs/fdu/studies/bn_cpu.yaml; bn.yaml is the full-size study)")
    p.add_argument("--lrs", nargs="+", type=float, default=[1e-3, 2e-3, 1e-4, 5e-4],
                   help="learning rates each net trains at (default 1e-3 2e-3 1e-4 5e-4: Adam's usual 1e-3 with "
                        "two smaller and one larger, cifarlab's choice)")
    p.add_argument("--epochs", type=float, help="training length in epochs (default: the recipe's train.epochs)")
    p.add_argument("--probe-every", type=int, default=2, help="steps between landscape probes (default 2)")
    p.add_argument("--step-multiples", nargs="+", type=float, default=[1.0, 10.0, 100.0],
                   help="probed step sizes along the gradient, as multiples of the learning rate (default 1 10 100)")
    p.add_argument("--out", help="study folder (default studies/<recipe name>)")
    p.set_defaults(func=run)
