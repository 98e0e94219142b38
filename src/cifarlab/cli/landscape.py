"""`cifarlab landscape`: loss and accuracy along filter-normalised random directions, or between two runs."""

from __future__ import annotations

import argparse
import time

from cifarlab.errors import CifarlabError


def run(args: argparse.Namespace) -> int:
    from cifarlab.analysis import interpolate_runs, landscape_of_run

    common = {"points": args.points, "images": args.images, "split": args.split, "seed": args.seed,
              "device": args.device, "batch_size": args.batch_size}
    start = time.perf_counter()
    if args.between:
        if args.run or args.dims != 2 or args.range is not None:
            raise CifarlabError("--between RUN_A RUN_B draws the line between two runs: give no other RUN, "
                                "--dims or --range (use --margin for how far past the ends to go)")
        written = interpolate_runs(args.between[0], args.between[1], args.out, margin=args.margin, **common)
    elif args.run:
        extent = 1.0 if args.range is None else args.range
        written = landscape_of_run(args.run, args.out, dims=args.dims, extent=extent, **common)
    else:
        raise CifarlabError("give a run folder to slice (cifarlab landscape RUN) or two runs to interpolate "
                            "between (--between RUN_A RUN_B)")
    print(f"landscape done in {time.perf_counter() - start:.1f} s")
    for path in written.values():
        print(f"wrote: {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("landscape", help="loss-landscape slices of a run, or interpolation between two runs",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=("examples:\n  cifarlab landscape runs/quick --dims 2 --points 21 --range 1.0\n"
                               "  cifarlab landscape runs/quick --dims 1 --points 41 --images 2000\n"
                               "  cifarlab landscape --between runs/quick runs/quick-2 --out interpolation"))
    p.add_argument("run", nargs="?", help="run folder to slice around (uses best.pt, else last.pt)")
    p.add_argument("--between", nargs=2, metavar=("RUN_A", "RUN_B"),
                   help="interpolate linearly from RUN_A's weights (alpha 0) to RUN_B's (alpha 1) instead")
    p.add_argument("--dims", type=int, choices=(1, 2), default=2, help="random directions of the slice (default 2)")
    p.add_argument("--points", type=int, default=21, help="points along each direction (default 21)")
    p.add_argument("--range", type=float, help="coordinates from -RANGE to RANGE in filter-normalised units "
                                               "(default 1.0)")
    p.add_argument("--margin", type=float, default=0.5, help="--between: alpha from -MARGIN to 1+MARGIN (default 0.5)")
    p.add_argument("--images", type=int, default=1000, help="size of the fixed evaluation subset (default 1000)")
    p.add_argument("--split", choices=("test", "val"), default="test", help="split the subset is drawn from")
    p.add_argument("--seed", type=int, default=0, help="seed of the subset and the directions (default 0)")
    p.add_argument("--batch-size", type=int, default=500, help="images per forward pass (default 500)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available, else cpu)")
    p.add_argument("--out", help="output folder (default RUN/landscape, or RUN_A/interpolation-<RUN_B>)")
    p.set_defaults(func=run)
