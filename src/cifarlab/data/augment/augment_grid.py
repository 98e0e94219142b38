"""A PNG of what a recipe's augmentation does: one row per op (and policy), the same sample images in every row."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import torch
from PIL import Image, ImageDraw, ImageFont

from cifarlab.atomic import atomic_path
from cifarlab.config.augment_ops import OpSetting, check_ops
from cifarlab.data.augment.heavy import HeavyAugment
from cifarlab.data.augment.ops import apply_op
from cifarlab.data.sample_grid import MAX_PER_CLASS
from cifarlab.errors import CifarlabError

_TILE = 64  # CIFAR images are enlarged (nearest neighbour) to this many pixels
_GAP = 2


def sample_images(images: torch.Tensor, labels: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """Indices of `count` seeded random images, from as many different classes as there are."""
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=g)
    picked: list[int] = []
    seen: set[int] = set()
    for index in order.tolist():  # first pass: one image per class
        if int(labels[index]) not in seen:
            seen.add(int(labels[index]))
            picked.append(index)
        if len(picked) == count:
            return torch.tensor(picked)
    taken = set(picked)
    rest = [i for i in order.tolist() if i not in taken]
    return torch.tensor(picked + rest[: count - len(picked)])


def augment_rows(augment: Any, images: torch.Tensor, seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    """(label, float images in [0, 1]) per row: the originals, each op at p=1, the policy, then all at their own p."""
    x = images.float() / 255.0
    rows = [("original", x)]
    for i, op in enumerate(check_ops(augment.ops)):
        always = OpSetting(op.name, 1.0, op.params)
        rows.append((f"{op.name} (p={op.p:g})", apply_op(x, always, torch.Generator().manual_seed(seed + i))))
    if augment.policy != "none":
        policy_only = HeavyAugment(replace(augment, ops=[], augmix_js=False))
        rows.append((augment.policy, policy_only(x, torch.Generator().manual_seed(seed))))
    if len(rows) > 2:
        combined = HeavyAugment(replace(augment, augmix_js=False))
        rows.append(("all together", combined(x, torch.Generator().manual_seed(seed))))
    return rows


def augment_grid(augment: Any, images: torch.Tensor, labels: torch.Tensor, classes: list[str],
                 path: str | os.PathLike, count: int = 8, seed: int = 0) -> list[str]:
    """Write the grid of `augment`'s ops on `count` sample training images to `path`; return the row labels."""
    if not augment.ops and augment.policy == "none":
        raise CifarlabError("the recipe has no heavy augmentation to show (augment.ops is empty and "
                            "augment.policy=none); add e.g. augment.ops=[{name: rotate, p: 0.5}]")
    if not 1 <= count <= MAX_PER_CLASS:
        raise CifarlabError(f"an augmentation grid shows 1 to {MAX_PER_CLASS} images (columns), got --images {count}")
    picked = sample_images(images, labels, count, seed)
    rows = augment_rows(augment, images[picked], seed)
    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = int(max(measure.textlength(label, font=font) for label, _ in rows)) + 3 * _GAP
    header = 14
    canvas = Image.new("RGB", (label_w + len(picked) * (_TILE + _GAP), header + len(rows) * (_TILE + _GAP)), "white")
    draw = ImageDraw.Draw(canvas)
    for col, index in enumerate(picked.tolist()):
        draw.text((label_w + col * (_TILE + _GAP), 0), classes[int(labels[index])][:10], fill="black", font=font)
    for row, (label, batch) in enumerate(rows):
        top = header + row * (_TILE + _GAP)
        draw.text((_GAP, top + _TILE // 2 - 5), label, fill="black", font=font)
        pixels = (batch.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
        for col, image in enumerate(pixels):
            tile = Image.fromarray(image).resize((_TILE, _TILE), Image.NEAREST)
            canvas.paste(tile, (label_w + col * (_TILE + _GAP), top))
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return [label for label, _ in rows]
