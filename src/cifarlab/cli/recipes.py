"""`cifarlab recipes`: the recipes that ship with cifarlab, one line each."""

from __future__ import annotations

import argparse


def run(args: argparse.Namespace) -> int:
    from cifarlab.config.shipped import recipe_description, shipped_recipes

    recipes = shipped_recipes()
    width = max(len(name) for name in recipes)
    for name, path in recipes.items():
        print(f"{name:<{width}}  {recipe_description(path)}")
    print("\ntrain one with `cifarlab train NAME` (e.g. `cifarlab train quick`); "
          "`cifarlab train NAME --print-config` shows every value it sets")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("recipes", help="list the recipes that ship with cifarlab",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  cifarlab recipes\n  cifarlab train quick --print-config")
    p.set_defaults(func=run)
