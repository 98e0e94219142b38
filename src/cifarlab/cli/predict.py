"""`cifarlab predict`: a submission file (`id,label`) of a run's predictions on a test set or corrupted set."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from cifarlab.robustness.submission import write_submission

    count = write_submission(args.run, args.data, args.out, tta=args.tta, limit=args.limit, device=args.device)
    print(f"wrote {args.out}: {count} predictions")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from cifarlab.evaluation.tta import TTA_MODES

    p = sub.add_parser(
        "predict", help="write a submission CSV (id,label) of a run's predictions",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=("examples:\n  cifarlab predict runs/dl4ds --data cifar100 --out submission.csv --tta shift16\n"
                "  cifarlab predict runs/dl4ds --data data/ood-test --out submission_ood.csv\n\n"
                "ids: the test-set index for a dataset name; distortionNN_severity_index for a folder of\n"
                "distortionNN.npy files (DL4DS's Kaggle ids) or of <corruption>.npy files, where NN is the\n"
                "corruption's place in cifarlab.robustness.CORRUPTIONS (00 gaussian_noise ... 18 saturate)."))
    p.add_argument("run", help="run folder (uses best.pt, else last.pt)")
    p.add_argument("--data", required=True, help="cifar10, cifar100, folder:PATH (its test split), or a folder of "
                                                 "corrupted .npy files")
    p.add_argument("--out", required=True, help="CSV file to write")
    p.add_argument("--tta", choices=TTA_MODES,
                   help="test-time augmentation (default: the recipe's eval.tta)")
    p.add_argument("--limit", type=int,
                   help="only N evenly spaced images (of each severity, for a folder); ids keep their index")
    p.add_argument("--device", default="auto", help="where the model runs: auto (the GPU if any), cpu, cuda")
    p.set_defaults(func=run)
