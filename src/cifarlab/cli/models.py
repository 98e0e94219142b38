"""`cifarlab models`: every model with its parameters and input size, on request its multiply-adds or a per-layer table."""

from __future__ import annotations

import argparse


def print_layer_tables(names: list[str]) -> int:
    """`--layers`: one torchinfo-style table per named model."""
    from cifarlab.errors import CifarlabError
    from cifarlab.models.catalogue import constructor_of
    from cifarlab.models.layer_table import format_layer_table, layer_table

    if not names:
        raise CifarlabError("--layers needs the models to show: cifarlab models resnet18 --layers")
    for name in names:
        constructor_of(name)  # an unknown name stops here with the closest spellings
    for name in names:
        # Plain text, not rich: shapes such as [1, 64, 32, 32] would be read as rich markup.
        print(f"{name} (10 classes)\n{format_layer_table(layer_table(name))}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.layers:
        return print_layer_tables(args.names)
    from rich.console import Console
    from rich.table import Table

    from cifarlab.models.catalogue import constructor_of
    from cifarlab.models.summary import model_table

    for name in args.names:
        constructor_of(name)  # an unknown name stops here with the closest spellings
    rows = model_table(only=args.names or None, macs=args.macs)
    table = Table(title="cifarlab models (10 classes)")
    columns = ("name", "parameters", "input") + (("multiply-adds",) if args.macs else ())
    for col in columns:
        table.add_column(col, justify="left" if col == "name" else "right")
    for row in rows:
        cells = [row["name"], f"{row['params']:,}", "x".join(map(str, row["input_size"]))]
        if args.macs:
            cells.append(f"{row['macs'] / 1e6:,.1f} M")
        table.add_row(*cells)
    Console().print(table)
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "models", help="list every model with its parameters and input size",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  cifarlab models\n  cifarlab models --macs resnet18 wrn_28_10\n  cifarlab models mobilenet_v2 --layers",
    )
    p.add_argument("names", nargs="*", help="only these models (default: every registered model)")
    p.add_argument("--macs", action="store_true",
                   help="also count multiply-adds per image at the input size (traces a forward pass: about 0.5 s a model)")
    p.add_argument("--layers", action="store_true",
                   help="per-layer table of the named models: output shape, parameters, multiply-adds, trainable "
                        "(needs torchinfo: pip install 'cifarlab[tune]')")
    p.set_defaults(func=run)
