"""`cifarlab export`: write a run's weights as one portable .safetensors file."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from cifarlab.runs.export import export_run

    path = export_run(args.run, args.out)
    print(f"wrote {path}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a run's weights and model description to a .safetensors file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  cifarlab export runs/quick --out quick.safetensors\n"
               "  cifarlab export runs/quick/last.pt --out quick-last.safetensors\n\n"
               "load it again with cifarlab.models.create(weights=\"quick.safetensors\")",
    )
    p.add_argument("run", help="run folder (uses best.pt, else last.pt) or a checkpoint file inside one")
    p.add_argument("--out", required=True, help="the .safetensors file to write")
    p.set_defaults(func=run)
