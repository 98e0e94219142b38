"""A PNG of sample training images: one row per class, labelled with the class name."""

from __future__ import annotations

import os

import torch
from PIL import Image, ImageDraw, ImageFont

from cifarlab.atomic import atomic_path
from cifarlab.data.sources import Dataset
from cifarlab.data.splits import examples_per_class
from cifarlab.errors import CifarlabError

_MAX_ROWS = 20  # beyond this a grid stops being readable; rows are spread over all classes
# Columns: 100 tiles of 64 px are 6,600 px wide; 10,000 wrote a 218-megapixel PNG that image viewers
# (and Pillow's decompression-bomb check) refuse to open.
MAX_PER_CLASS = 100
_MIN_TILE = 64  # small images are enlarged (nearest neighbour) to at least this many pixels
_GAP = 2


def sample_grid(dataset: Dataset, path: str | os.PathLike, per_class: int = 10, seed: int = 0,
                max_rows: int = _MAX_ROWS) -> list[str]:
    """Write a grid of `per_class` seeded training images per class to `path`; return the rows' classes.

    With more than `max_rows` classes, `max_rows` classes evenly spread over the label
    order are shown.
    """
    if not 1 <= per_class <= MAX_PER_CLASS or max_rows < 1:
        raise CifarlabError(f"a sample grid shows 1 to {MAX_PER_CLASS} images per class (--per-class) in at least "
                            f"one row, got {per_class} and {max_rows} rows")
    rows = _row_classes(dataset.num_classes, max_rows)
    counts = torch.bincount(dataset.train_labels, minlength=dataset.num_classes)
    per_class = min(per_class, int(counts[counts > 0].min()))
    picked = examples_per_class(dataset.train_labels, per_class, seed)
    labels = dataset.train_labels[picked]
    _, height, width = dataset.train_images.shape[1:]
    scale = max(1, -(-_MIN_TILE // max(height, width)))
    tile_w, tile_h = width * scale, height * scale
    font = ImageFont.load_default()
    names = [dataset.classes[c] for c in rows]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = int(max(measure.textlength(n, font=font) for n in names)) + 3 * _GAP
    canvas = Image.new("RGB", (label_w + per_class * (tile_w + _GAP), len(rows) * (tile_h + _GAP)),
                       "white")
    draw = ImageDraw.Draw(canvas)
    for row, cls in enumerate(rows):
        top = row * (tile_h + _GAP)
        text_h = draw.textbbox((0, 0), names[row], font=font)[3]
        draw.text((_GAP, top + (tile_h - text_h) // 2), names[row], fill="black", font=font)
        for col, index in enumerate(picked[labels == cls].tolist()):
            image = dataset.train_images[index].permute(1, 2, 0).contiguous().numpy()
            tile = Image.fromarray(image).resize((tile_w, tile_h), Image.NEAREST)
            canvas.paste(tile, (label_w + col * (tile_w + _GAP), top))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return names


def _row_classes(num_classes: int, max_rows: int) -> list[int]:
    if num_classes <= max_rows:
        return list(range(num_classes))
    return torch.linspace(0, num_classes - 1, max_rows).round().long().tolist()
