"""`cifarlab convert-checkpoint`: rewrite a checkpoint of an older cifarlab in the current, safe format."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from cifarlab.errors import CifarlabError
    from cifarlab.runs.checkpoint import FORMAT, convert_checkpoint

    if args.output is not None and len(args.checkpoints) > 1:
        raise CifarlabError("--output names one file, but several checkpoints were given; "
                            "convert them in place (no --output) or one at a time")
    for path in args.checkpoints:
        target = convert_checkpoint(path, out=args.output, trust=args.trust)
        print(f"{path} -> {target} ({FORMAT})")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "convert-checkpoint", help="rewrite old checkpoints in the current format (tensors and plain values only)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  cifarlab convert-checkpoint runs/quick/last.pt runs/quick/best.pt\n"
               "  cifarlab convert-checkpoint old.pt --output new.pt\n\n"
               "A checkpoint of the previous format is read without running anything in it. A file that\n"
               "would import other Python objects is refused unless you pass --trust, which unpickles it\n"
               "in full and so runs any code it holds: use it only for files you made yourself.",
    )
    p.add_argument("checkpoints", nargs="+", metavar="OLD.pt", help="checkpoint files to convert (in place)")
    p.add_argument("--output", metavar="NEW.pt", default=None,
                   help="write the converted checkpoint here instead of in place (one checkpoint only)")
    p.add_argument("--trust", action="store_true",
                   help="you made this file: unpickle it in full even if it needs other Python objects")
    p.set_defaults(func=run)
