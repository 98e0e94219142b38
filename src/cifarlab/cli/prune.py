"""`cifarlab prune`: accuracy of a run pruned at several ratios, by DessiLBI's Gamma and by weight magnitude."""

from __future__ import annotations

import argparse
import time


def run(args: argparse.Namespace) -> int:
    from cifarlab.analysis.pruning_study import prune_run

    start = time.perf_counter()
    study = prune_run(args.run, args.ratios, args.out, methods=args.methods, finetune_epochs=args.finetune,
                      finetune_lr=args.finetune_lr, layers=args.layers, device=args.device)
    print(f"prune done in {time.perf_counter() - start:.1f} s")
    for path in study.files.values():
        print(f"wrote: {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prune", help="prune a run by DessiLBI's Gamma and by weight magnitude; accuracy per ratio",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=("examples:\n  cifarlab prune runs/fdu_dessilbi_vgg16 --ratios 10 20 30 40 50 60 70 80 90\n"
                               "  cifarlab prune runs/fdu_dessilbi_cpu --ratios 20 50 80 --finetune 2\n"
                               "  cifarlab prune runs/fdu_dessilbi_cpu --layers features.8.weight   # one layer only\n"
                               "  cifarlab prune runs/quick --methods magnitude --layers all --out prune-quick\n\n"
                               "Each ratio removes that share of every pruned layer's groups (a convolution's output\n"
                               "filters, a linear layer's weights). Gamma is read from the SLBI optimiser state in\n"
                               "RUN/last.pt; a run trained with another optimiser is pruned by magnitude only."))
    p.add_argument("run", help="run folder (uses last.pt, whose optimiser state holds Gamma)")
    p.add_argument("--ratios", type=float, nargs="+", default=[10, 20, 30, 40, 50, 60, 70, 80, 90],
                   help="pruning ratios in percent (default 10 20 ... 90)")
    p.add_argument("--methods", nargs="+", choices=("slbi", "magnitude"), default=["slbi", "magnitude"],
                   help="rank groups by Gamma (slbi) and/or by weight magnitude (default both)")
    p.add_argument("--finetune", type=int, default=0, metavar="EPOCHS",
                   help="fine-tune each pruned model this many epochs with its mask kept (default 0: none)")
    p.add_argument("--finetune-lr", type=float, default=0.01,
                   help="SGD lr of the fine-tuning, cosine-decayed to 0 (default 0.01)")
    p.add_argument("--layers", nargs="+", help="parameter names to prune, or `all` for every convolution and linear "
                                               "weight (default: every convolution)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available, else cpu)")
    p.add_argument("--out", help="output folder (default RUN/prune)")
    p.set_defaults(func=run)
