"""`cifarlab robustness`: write corrupted test sets (make) and score a run on them (eval)."""

from __future__ import annotations

import argparse


def _make(args: argparse.Namespace) -> int:
    from cifarlab.data import load_dataset
    from cifarlab.robustness import BENCHMARK, CORRUPTIONS
    from cifarlab.robustness.dataset import spaced_indices, write_corrupted_set

    if args.frost_images is not None:
        from cifarlab.robustness.textures import frost_photos

        frost_photos(args.frost_images)  # a folder without the photographs fails before the data is loaded
    dataset = load_dataset(args.dataset, root=args.root)
    chosen = spaced_indices(len(dataset.test_labels), args.limit)
    images, labels = dataset.test_images[chosen], dataset.test_labels[chosen]
    names = args.corruptions or (BENCHMARK if args.benchmark_only else CORRUPTIONS)
    print(f"corrupting {images.shape[0]} {dataset.name} test images: {len(names)} corruptions x 5 severities, "
          f"seed {args.seed}")
    write_corrupted_set(images, labels, args.out, names, seed=args.seed, frost_images=args.frost_images,
                        on_written=lambda path: print(f"wrote {path}", flush=True))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from cifarlab.robustness.evaluation import (
        evaluate_robustness,
        format_table,
        write_robustness,
    )

    result = evaluate_robustness(
        args.run, data=args.data, corruptions=args.corruptions, severities=args.severities, tta=args.tta,
        limit=args.limit, seed=args.seed, device=args.device,
        on_scored=lambda name, severity, top1: print(f"{name} severity {severity}: top-1 {top1:.2%}", flush=True),
    )
    print(format_table(result))
    files = write_robustness(args.run, result)
    print(f"wrote: {', '.join(str(path) for path in files)}")
    return 0


def run(args: argparse.Namespace) -> int:
    return _make(args) if args.action == "make" else _eval(args)


def add_parser(sub: argparse._SubParsersAction) -> None:
    from cifarlab.evaluation.tta import TTA_MODES
    from cifarlab.robustness import CORRUPTIONS

    p = sub.add_parser(
        "robustness", help="corrupted test sets (CIFAR-10-C style) and robustness scores of a run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("examples:\n  cifarlab robustness make cifar10 --out data/CIFAR-10-C\n"
                "  cifarlab robustness make cifar100 --out /tmp/c100c --corruptions fog snow --limit 500\n"
                "  cifarlab robustness make cifar10 --out c10c --frost-images robustness/ImageNet-C/create_c\n"
                "  cifarlab robustness eval runs/quick\n"
                "  cifarlab robustness eval runs/quick --data data/CIFAR-10-C --tta flip\n"
                "  cifarlab robustness eval runs/quick --corruptions fog snow --severities 3 5 --limit 1000\n\n"
                f"corruptions: {', '.join(CORRUPTIONS)}"))
    actions = p.add_subparsers(dest="action", required=True)
    make = actions.add_parser("make", help="write <corruption>.npy (5 severities stacked) and labels.npy",
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="examples:\n  cifarlab robustness make cifar10 --out data/CIFAR-10-C")
    make.add_argument("dataset", help="dataset whose test split is corrupted: cifar10, cifar100 or folder:PATH")
    make.add_argument("--out", required=True, help="folder the .npy files go to")
    make.add_argument("--corruptions", nargs="+", choices=CORRUPTIONS, metavar="NAME",
                      help="which corruptions (default: all 19, the 15 of the benchmark then the 4 extra)")
    make.add_argument("--benchmark-only", action="store_true", help="only the 15 corruptions of the benchmark")
    make.add_argument("--limit", type=int, help="only N test images, evenly spaced over the test split")
    make.add_argument("--seed", type=int, default=0, help="seed of the random corruptions (default 0)")
    make.add_argument("--root", help="folder the dataset sources live in (default $CIFARLAB_DATA)")
    make.add_argument("--frost-images", metavar="DIR",
                      help="folder with the published CIFAR-10-C frost photographs (frost1.png, frost2.png, "
                           "frost3.png, frost4.jpg, frost5.jpg from hendrycks/robustness ImageNet-C/create_c): "
                           "frost crops them as the published code does (default: cifarlab's generated texture)")
    make.set_defaults(func=run)
    evaluate = actions.add_parser(
        "eval", help="score a run on every corruption x severity: table, robustness.json, heatmap, report.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  cifarlab robustness eval runs/quick --data data/CIFAR-10-C")
    evaluate.add_argument("run", help="run folder (uses best.pt, else last.pt)")
    evaluate.add_argument("--data", help="corrupted-set folder (robustness make, or the published CIFAR-10-C/100-C); "
                                         "default: corrupt the run's test set here")
    evaluate.add_argument("--corruptions", nargs="+", choices=CORRUPTIONS, metavar="NAME",
                          help="which corruptions (default: the 15 of the benchmark, those --data holds)")
    evaluate.add_argument("--severities", nargs="+", type=int, choices=(1, 2, 3, 4, 5), default=[1, 2, 3, 4, 5],
                          help="which severities (default: 1 2 3 4 5)")
    evaluate.add_argument("--tta", choices=TTA_MODES,
                          help="test-time augmentation (default: the recipe's eval.tta)")
    evaluate.add_argument("--limit", type=int, help="only N images of each severity, evenly spaced")
    evaluate.add_argument("--seed", type=int, default=0, help="seed of the corruptions made here (default 0)")
    evaluate.add_argument("--device", default="auto", help="where the model runs: auto (the GPU if any), cpu, cuda")
    evaluate.set_defaults(func=run)
