"""Image-folder datasets (`folder:PATH`): trees and zips of any Pillow format, sizes, damage, cache."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from cifarlab.data import image_folder, load_dataset
from cifarlab.errors import CifarlabError
from tests.data.fake_archives import tree_images, write_tree_zip


def test_folder_tree_loads_any_pillow_format_at_its_own_size(tmp_path, cache_home):
    tree = tmp_path / "shapes"
    rng = np.random.default_rng(1)
    pixels = {}
    for split, n in (("train", 3), ("test", 1)):
        for cls in ("square", "circle"):
            (tree / split / cls).mkdir(parents=True)
            for i in range(n):
                pixels[f"{split}/{cls}/{i}"] = array = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
                Image.fromarray(array).save(tree / split / cls / f"{i}.png")
    Image.fromarray(pixels["train/square/2"][..., 0]).save(tree / "train/square/2.png")  # grey
    (tree / "train" / "circle" / "notes.txt").write_text("not an image")
    ds = load_dataset(f"folder:{tree}")
    assert ds.classes == ["circle", "square"]  # sorted names give the label order
    assert ds.train_images.shape == (6, 3, 6, 8) and ds.test_images.shape == (2, 3, 6, 8)
    assert ds.train_labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert torch.equal(ds.train_images[0], torch.from_numpy(pixels["train/circle/0"]).permute(2, 0, 1))
    grey = torch.from_numpy(pixels["train/square/2"][..., 0])
    assert all(torch.equal(ds.train_images[5, c], grey) for c in range(3))


def test_folder_zip_of_webp_is_read_in_place_and_decoded_in_parallel(tmp_path, monkeypatch,
                                                                     cache_home):
    images = tree_images(["b", "a", "c"], {"train": 8, "test": 3}, size=(12, 10), seed=3)
    archive = write_tree_zip(tmp_path / "tiny.zip",
                             {k.replace(".png", ".webp"): v for k, v in images.items()},
                             fmt="WEBP", prefix="tiny/")  # as zipping a folder wraps it
    monkeypatch.setattr(image_folder, "_CHUNK", 5)  # a small tree, yet a real two-process pool
    monkeypatch.setattr(image_folder, "_worker_count", lambda n: 2)
    ds = load_dataset(f"folder:{archive}")
    assert ds.classes == ["a", "b", "c"] and ds.train_images.shape == (24, 3, 10, 12)
    expected = torch.stack([torch.from_numpy(images[f"train/{c}/{i:03d}.png"]).permute(2, 0, 1)
                            for c in ("a", "b", "c") for i in range(8)])
    assert torch.equal(ds.train_images, expected)  # lossless WebP: exact pixels, right order
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "tiny.zip"]  # nothing extracted


def test_folder_images_of_two_sizes_raise_naming_the_odd_file(tmp_path, cache_home):
    images = tree_images(["a", "b"], {"train": 2, "test": 1})
    images["train/b/001.png"] = np.zeros((30, 32, 3), dtype=np.uint8)
    archive = write_tree_zip(tmp_path / "mixed.zip", images)
    with pytest.raises(CifarlabError, match="train/b/001.png is 32x30.*share one size"):
        load_dataset(f"folder:{archive}")
    assert not list(cache_home.iterdir())


@pytest.mark.parametrize("workers", [1, 2])
def test_unreadable_zip_member_names_it_and_leaves_no_cache(tmp_path, monkeypatch, cache_home,
                                                            workers):
    monkeypatch.setattr(image_folder, "_worker_count", lambda n: workers)
    archive = write_tree_zip(tmp_path / "broken.zip", tree_images(["a", "b"], {"train": 2, "test": 1}))
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("train/b/bad.png", b"\x89PNG not really")
    with pytest.raises(CifarlabError, match="cannot read image train/b/bad.png in .*broken.zip"):
        load_dataset(f"folder:{archive}")
    assert not list(cache_home.iterdir())


def test_folder_cache_follows_edits_to_the_tree(tmp_path, cache_home):
    archive = write_tree_zip(tmp_path / "t.zip", tree_images(["a", "b"], {"train": 2, "test": 1}))
    first = load_dataset(f"folder:{archive}")
    assert load_dataset(f"folder:{archive}").train_images.shape == first.train_images.shape
    (tmp_path / "elsewhere").mkdir()
    other = write_tree_zip(tmp_path / "elsewhere" / "t.zip", tree_images(["x", "y"], {"train": 1, "test": 1}))
    assert load_dataset(f"folder:{other}").num_classes == 2
    assert len(list(cache_home.iterdir())) == 2
    write_tree_zip(archive, tree_images(["a", "b", "c"], {"train": 2, "test": 1}))
    assert load_dataset(f"folder:{archive}").num_classes == 3
    # The edited tree's old cache is gone; the other t.zip (same name, another folder) keeps its own.
    assert len(list(cache_home.iterdir())) == 2
    assert load_dataset(f"folder:{other}").classes == ["x", "y"] and len(list(cache_home.iterdir())) == 2


def test_folder_without_a_test_split_explains_the_layout(tmp_path, cache_home):
    archive = write_tree_zip(tmp_path / "t.zip", tree_images(["a"], {"train": 2}))
    with pytest.raises(CifarlabError, match="no images under test/<class>/; lay it out as"):
        load_dataset(f"folder:{archive}")


@pytest.mark.parametrize("container", ["folder", "zip"])
def test_class_folder_without_images_is_named_in_a_warning(tmp_path, cache_home, container):
    images = tree_images(["ant", "bee"], {"train": 2, "test": 1}, size=(8, 8), seed=5)
    tree = tmp_path / "insects"
    for member, array in images.items():
        (tree / member).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(array).save(tree / member)
    (tree / "train" / "wasp").mkdir()  # empty in both splits, with only a note in one
    (tree / "test" / "wasp").mkdir()
    (tree / "test" / "wasp" / "README.txt").write_text("photos to come")
    source = tree
    if container == "zip":
        source = tmp_path / "insects.zip"
        with zipfile.ZipFile(source, "w") as archive:
            for path in sorted(tree.rglob("*")):
                archive.write(path, path.relative_to(tree).as_posix() + ("/" if path.is_dir() else ""))
    with pytest.warns(UserWarning, match=r"class folder test/wasp, train/wasp holds no images and is left out \(2 classes remain\)"):
        ds = load_dataset(f"folder:{source}")
    assert ds.classes == ["ant", "bee"] and ds.train_images.shape[0] == 4
