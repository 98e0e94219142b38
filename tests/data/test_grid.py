"""sample_grid: a labelled PNG, one row per class, written atomically."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cifarlab.data import Dataset, sample_grid
from cifarlab.errors import CifarlabError


def coloured_dataset(num_classes: int, per_class: int = 12) -> Dataset:
    """Class c's images are solid grey level 2c+1 (distinct per class), with a random spot."""
    labels = torch.arange(num_classes).repeat_interleave(per_class)
    images = (labels * 2 + 1).to(torch.uint8).view(-1, 1, 1, 1).repeat(1, 3, 32, 32)
    images[:, :, 0, 0] = torch.randint(100, 256, (len(labels), 3), generator=torch.Generator().manual_seed(0),
                                       dtype=torch.uint8)
    return Dataset("toy", [f"class{c}" for c in range(num_classes)], images, labels,
                   images[:0], labels[:0])


def test_grid_has_one_labelled_row_of_that_class_per_class(tmp_path):
    ds = coloured_dataset(3)
    rows = sample_grid(ds, tmp_path / "grid.png", per_class=4, seed=0)
    assert rows == ["class0", "class1", "class2"]
    grid = np.asarray(Image.open(tmp_path / "grid.png").convert("RGB"))
    assert grid.shape[0] == 3 * (64 + 2)  # 32 px images shown at 64 px, 2 px gaps
    right = grid[:, -64:]  # the last column of tiles holds only images
    for row in range(3):
        tile = right[row * 66 + 10: row * 66 + 60, 10:60]
        assert (tile == 2 * row + 1).all()  # each row shows its own class
    label_area = grid[:, :grid.shape[1] - 4 * 66]
    assert (label_area < 128).any()  # the class names are drawn
    assert sorted(p.name for p in tmp_path.iterdir()) == ["grid.png"]


def test_grid_with_many_classes_caps_the_rows_across_the_label_range(tmp_path):
    rows = sample_grid(coloured_dataset(100, per_class=3), tmp_path / "g.png", per_class=3)
    assert len(rows) == 20 and rows[0] == "class0" and rows[-1] == "class99"
    assert Image.open(tmp_path / "g.png").size[1] == 20 * 66


def test_grid_seed_chooses_different_images(tmp_path):
    ds = coloured_dataset(2, per_class=40)
    sample_grid(ds, tmp_path / "a.png", per_class=3, seed=0)
    sample_grid(ds, tmp_path / "b.png", per_class=3, seed=1)
    sample_grid(ds, tmp_path / "c.png", per_class=3, seed=0)
    a, b, c = (np.asarray(Image.open(tmp_path / f"{n}.png")) for n in "abc")
    assert not np.array_equal(a, b) and np.array_equal(a, c)


@pytest.mark.parametrize("per_class", [0, 101])
def test_a_per_class_count_outside_what_a_viewer_opens_is_one_message_and_no_file(tmp_path, per_class):
    with pytest.raises(CifarlabError, match=rf"1 to 100 images per class \(--per-class\).* got {per_class}"):
        sample_grid(coloured_dataset(3), tmp_path / "g.png", per_class=per_class)
    assert not (tmp_path / "g.png").exists()
