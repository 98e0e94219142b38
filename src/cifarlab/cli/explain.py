"""`cifarlab explain`: a Grad-CAM (or Grad-CAM++) gallery of a run's correct and misclassified test images."""

from __future__ import annotations

import argparse
import time


def run(args: argparse.Namespace) -> int:
    from cifarlab.analysis import explain_run

    start = time.perf_counter()
    result = explain_run(args.run, args.out, method=args.method, count=args.images, classes=args.classes,
                         layer=args.layer, split=args.split, seed=args.seed, device=args.device)
    print(f"{args.method} at layer {result.layer}: {len(result.correct)} correct and "
          f"{len(result.misclassified)} misclassified images ({time.perf_counter() - start:.1f} s)")
    print(f"wrote: {result.path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("explain", help="Grad-CAM gallery of a run's predictions",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog=("examples:\n  cifarlab explain runs/quick --out cams.png\n"
                               "  cifarlab explain runs/quick --method gradcam++ --classes cat dog --images 6 "
                               "--out cats_dogs.png\n"
                               "  cifarlab explain runs/resnet18 --layer stages.2 --out stage3.png"))
    p.add_argument("run", help="run folder (uses best.pt, else last.pt)")
    p.add_argument("--method", choices=("gradcam", "gradcam++"), default="gradcam")
    p.add_argument("--images", type=int, default=8, help="correct and misclassified images to show, each (default 8)")
    p.add_argument("--classes", nargs="+", metavar="CLASS", help="only images of these true classes")
    p.add_argument("--layer", help="layer to explain, a name from the model's named_modules "
                                   "(default: its last convolutional feature map)")
    p.add_argument("--split", choices=("test", "val"), default="test", help="images to draw from (default test)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random draw of images (default 0)")
    p.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: cuda if available, else cpu)")
    p.add_argument("--out", required=True, help="PNG file to write, e.g. cams.png")
    p.set_defaults(func=run)
