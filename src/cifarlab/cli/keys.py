"""`cifarlab keys`: every recipe key with what it accepts, its default and one line of help."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from cifarlab.config.keys import recipe_keys

    keys = recipe_keys(args.section)
    name_width = max(len(key.name) for key in keys)
    default_width = min(max(len(key.default) for key in keys), 16)
    for key in keys:
        print(f"{key.name:<{name_width}}  {key.default:<{default_width}}  {key.accepts}")
        if key.help:
            print(f"{'':<{name_width}}  {key.help}")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("keys", help="list the recipe keys: type, default, help",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  cifarlab keys\n  cifarlab keys optim\n"
                              "  cifarlab train quick optim.lr=0.2   # set a key on the command line")
    p.add_argument("section", nargs="?", help="only this section (optim, train, ...) or key (optim.lr)")
    p.set_defaults(func=run)
