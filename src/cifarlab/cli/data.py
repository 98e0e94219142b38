"""`cifarlab data`: what a dataset holds and where it comes from, a grid of sample images, and what augmentation does to them."""

from __future__ import annotations

import argparse
from pathlib import Path

from cifarlab.errors import CifarlabError


def run(args: argparse.Namespace) -> int:
    if args.action == "augment-grid":
        return _augment_grid(args)
    if args.overrides:
        raise CifarlabError(f"`cifarlab data {args.action}` takes no recipe overrides, got {' '.join(args.overrides)}; "
                            "overrides go with augment-grid")
    if args.action == "info":
        _print_info(args.name, args.root)
        return 0
    from cifarlab.data.sample_grid import sample_grid
    from cifarlab.data.sources import load_dataset

    out = Path(args.out or f"{args.name.replace(':', '_').replace('/', '_')}_grid.png")
    rows = sample_grid(load_dataset(args.name, root=args.root), out, per_class=args.per_class, seed=args.seed)
    print(f"wrote {out}: {len(rows)} rows ({rows[0]} ... {rows[-1]}), images drawn at random with seed {args.seed}")
    return 0


def _augment_grid(args: argparse.Namespace) -> int:
    from cifarlab.config import load_recipe
    from cifarlab.data.augment.augment_grid import augment_grid
    from cifarlab.data.sources import load_dataset

    recipe = load_recipe(args.name, args.overrides, check_machine=False)
    dataset = load_dataset(recipe.data.dataset, root=args.root or recipe.data.root)
    out = Path(args.out or f"{recipe.name}_augment.png")
    rows = augment_grid(recipe.augment, dataset.train_images, dataset.train_labels, dataset.classes, out,
                        count=args.images, seed=args.seed)
    print(f"wrote {out}: {len(rows)} rows ({', '.join(rows)}) x {args.images} images, seed {args.seed}")
    return 0


def _print_info(name: str, root: str | None) -> None:
    from cifarlab.data.sources import dataset_origin
    from cifarlab.data.stats import dataset_info

    info = dataset_info(name, root=root)
    channels, height, width = info["image_shape"]
    print(f"name: {info['name']}")
    print(f"classes: {info['num_classes']} ({', '.join(info['classes'])})")
    for split in ("train", "test"):
        print(f"{split} images: {info[split]:,} ({_per_class(info[f'{split}_per_class'])})")
    print(f"image size: {width}x{height}, {channels} channels, uint8")
    print(f"train mean: {_numbers(info['mean'])}  std: {_numbers(info['std'])}")
    for key, value in dataset_origin(name, root=root).items():
        print(f"{key}: {value}")


def _per_class(counts: list[int]) -> str:
    low, high = min(counts), max(counts)
    return f"{low:,} per class" if low == high else f"{low:,} to {high:,} per class"


def _numbers(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in values) + "]"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="dataset information and sample grids", formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  cifarlab data info cifar10\n  cifarlab data grid cifar100 --out grid.png\n"
                              "  cifarlab data augment-grid quick 'augment.ops=[{name: rotate, degrees: 30}, {name: jpeg}]' --out aug.png\n"
                              "  cifarlab data augment-grid quick augment.policy=trivialaugment --out ta.png")
    p.add_argument("action", choices=("info", "grid", "augment-grid"))
    p.add_argument("name", help="cifar10, cifar100 or folder:PATH; for augment-grid a recipe (file or shipped name)")
    p.add_argument("overrides", nargs="*", help="augment-grid: recipe overrides key=value")
    p.add_argument("--root", help="data folder (default $CIFARLAB_DATA, then ~/.cache/cifarlab)")
    p.add_argument("--out", help="PNG path (default NAME_grid.png; augment-grid: RECIPE-NAME_augment.png)")
    p.add_argument("--per-class", type=int, default=10, help="grid: images per class row")
    p.add_argument("--seed", type=int, default=0, help="grid, augment-grid: which random images are drawn")
    p.add_argument("--images", type=int, default=8, help="augment-grid: sample images (columns)")
    p.set_defaults(func=run)
