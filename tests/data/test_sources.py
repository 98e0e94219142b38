"""load_dataset: every accepted source, checksums, download, offline errors and the decoded cache."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import pickle
import tarfile
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cifarlab.data import cache, cifar_archive, image_folder, load_dataset
from cifarlab.data.sources import data_root
from cifarlab.errors import CifarlabError
from tests.conftest import load_real

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]
PER_BATCH = 20  # images in each fake batch: two of every CIFAR-10 class


@pytest.fixture
def cache_home(tmp_path, monkeypatch) -> Path:
    """A private cache folder and no ambient data root: fake archives never reach the real cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("CIFARLAB_CACHE", str(folder))
    monkeypatch.delenv("CIFARLAB_DATA", raising=False)
    return folder


def _batch(seed: int, n: int, labels_key: bytes, num_classes: int) -> dict:
    rng = np.random.default_rng(seed)
    return {b"batch_label": b"fake batch", labels_key: [int(i % num_classes) for i in range(seed, seed + n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [f"img_{i}.png".encode() for i in range(n)]}


def cifar10_members() -> dict[str, bytes]:
    """The pickled files of a small CIFAR-10 release, as the official python format has them."""
    files = {f"data_batch_{i}": _batch(i, PER_BATCH, b"labels", 10) for i in range(1, 6)}
    files["test_batch"] = _batch(9, PER_BATCH, b"labels", 10)
    files["batches.meta"] = {b"label_names": [n.encode() for n in CIFAR10_NAMES],
                             b"num_cases_per_batch": PER_BATCH, b"num_vis": 3072}
    return {name: pickle.dumps(obj, protocol=2) for name, obj in files.items()}


def cifar100_members() -> dict[str, bytes]:
    train, test = _batch(1, 300, b"fine_labels", 100), _batch(2, 100, b"fine_labels", 100)
    for batch in (train, test):
        batch[b"coarse_labels"] = [label // 5 for label in batch[b"fine_labels"]]
    meta = {b"fine_label_names": [f"fine{i:03d}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i:02d}".encode() for i in range(20)]}
    return {name: pickle.dumps(obj, protocol=2)
            for name, obj in {"train": train, "test": test, "meta": meta}.items()}


def write_tar(path: Path, folder: str, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def official(monkeypatch, name: str, archive: Path) -> None:
    """Accept `archive` as the official release by giving it the official md5."""
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    monkeypatch.setitem(cifar_archive.OFFICIAL, name,
                        dataclasses.replace(cifar_archive.OFFICIAL[name], md5=md5))


def expected_images(members: dict[str, bytes], names: list[str]) -> torch.Tensor:
    data = [pickle.loads(members[n], encoding="bytes")[b"data"] for n in names]
    return torch.from_numpy(np.concatenate(data).reshape(-1, 3, 32, 32))


def cifar10_archive(tmp_path, monkeypatch) -> tuple[Path, dict[str, bytes]]:
    members = cifar10_members()
    root = tmp_path / "data"
    root.mkdir()
    archive = write_tar(root / "cifar-10-python.tar.gz", "cifar-10-batches-py", members)
    official(monkeypatch, "cifar10", archive)
    return root, members


def test_cifar10_archive_loads_images_labels_and_class_names(tmp_path, monkeypatch, cache_home):
    root, members = cifar10_archive(tmp_path, monkeypatch)
    ds = load_dataset("cifar10", root=root)
    assert ds.classes == CIFAR10_NAMES and ds.num_classes == 10
    assert ds.train_images.shape == (5 * PER_BATCH, 3, 32, 32) and ds.train_images.dtype == torch.uint8
    assert ds.test_images.shape == (PER_BATCH, 3, 32, 32) and ds.test_labels.dtype == torch.int64
    batches = [f"data_batch_{i}" for i in range(1, 6)]
    assert torch.equal(ds.train_images, expected_images(members, batches))
    labels = [pickle.loads(members[n], encoding="bytes")[b"labels"] for n in batches]
    assert ds.train_labels.tolist() == sum(labels, [])
    assert torch.equal(ds.test_images, expected_images(members, ["test_batch"]))


def test_cifar100_archive_uses_fine_labels_and_fine_names(tmp_path, monkeypatch, cache_home):
    members = cifar100_members()
    archive = write_tar(tmp_path / "cifar-100-python.tar.gz", "cifar-100-python", members)
    official(monkeypatch, "cifar100", archive)
    ds = load_dataset("CIFAR-100", root=tmp_path)
    assert ds.num_classes == 100 and ds.classes[7] == "fine007"
    assert ds.train_images.shape == (300, 3, 32, 32) and ds.test_images.shape == (100, 3, 32, 32)
    fine = pickle.loads(members["train"], encoding="bytes")[b"fine_labels"]
    assert ds.train_labels.tolist() == fine and int(ds.train_labels.max()) == 99
    assert torch.equal(ds.train_images, expected_images(members, ["train"]))


def test_extracted_folder_loads_without_the_archive(tmp_path, cache_home):
    members = cifar10_members()
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, raw in members.items():
        (folder / name).write_bytes(raw)
    ds = load_dataset("cifar10", root=tmp_path)
    assert torch.equal(ds.test_images, expected_images(members, ["test_batch"]))
    assert len(ds.train_labels) == 5 * PER_BATCH


def test_wrong_md5_names_the_archive_and_leaves_no_cache(tmp_path, cache_home):
    write_tar(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", cifar10_members())
    with pytest.raises(CifarlabError, match=r"cifar-10-python\.tar\.gz has md5 .*delete it"):
        load_dataset("cifar10", root=tmp_path)
    assert not list(cache_home.iterdir())


def test_truncated_archive_names_the_file_and_leaves_no_cache(tmp_path, monkeypatch, cache_home):
    root, _ = cifar10_archive(tmp_path, monkeypatch)
    archive = root / "cifar-10-python.tar.gz"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    official(monkeypatch, "cifar10", archive)  # so the tar reader itself meets the damage
    with pytest.raises(CifarlabError, match=f"cannot read {archive}.*truncated or corrupt"):
        load_dataset("cifar10", root=root)
    assert not list(cache_home.iterdir())


def test_damaged_pickle_names_the_batch(tmp_path, cache_home):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, raw in cifar10_members().items():
        (folder / name).write_bytes(raw[:100] if name == "data_batch_3" else raw)
    with pytest.raises(CifarlabError, match="cannot unpickle .*data_batch_3"):
        load_dataset("cifar10", root=tmp_path)
    assert not list(cache_home.iterdir())


class _Payload:
    def __reduce__(self):
        return (print, ("this must never run",))


def test_pickle_holding_code_is_refused(tmp_path, cache_home, capsys):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    for name, raw in cifar10_members().items():
        (folder / name).write_bytes(raw)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": _Payload()}, protocol=2))
    with pytest.raises(CifarlabError, match="print does not belong in a CIFAR batch"):
        load_dataset("cifar10", root=tmp_path)
    assert "must never run" not in capsys.readouterr().out


def write_tree_zip(path: Path, images: dict[str, np.ndarray], fmt: str = "PNG",
                   prefix: str = "") -> Path:
    """A zip laid out split/class/file from {member: HWC uint8 array}."""
    with zipfile.ZipFile(path, "w") as archive:
        for member, pixels in images.items():
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format=fmt, **({"lossless": True} if fmt == "WEBP" else {}))
            archive.writestr(prefix + member, buffer.getvalue())
    return path


def tree_images(classes: list[str], per_split: dict[str, int], size=(32, 32), seed=0):
    rng = np.random.default_rng(seed)
    return {f"{split}/{cls}/{i:03d}.png": rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
            for split, n in per_split.items() for cls in classes for i in range(n)}


def test_cifar_zip_loads_with_class_folders_sorted_and_checks_sha256(tmp_path, cache_home):
    images = tree_images(list(reversed(CIFAR10_NAMES)), {"train": 3, "test": 2})
    archive = write_tree_zip(tmp_path / "cifar10.zip", images)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    (tmp_path / "cifar10.json").write_text(json.dumps({"sha256": digest}))
    ds = load_dataset("cifar10", root=tmp_path)
    assert ds.classes == CIFAR10_NAMES
    assert ds.train_labels.tolist() == [c for c in range(10) for _ in range(3)]
    first_bird = torch.from_numpy(images["train/bird/000.png"]).permute(2, 0, 1)
    assert torch.equal(ds.train_images[6], first_bird)

    (tmp_path / "cifar10.json").write_text(json.dumps({"sha256": "0" * 64}))
    (cache_home / "cifar10.cache").unlink()
    with pytest.raises(CifarlabError, match=r"cifar10\.zip has sha256 .*copy it again"):
        load_dataset("cifar10", root=tmp_path)
    assert not list(cache_home.iterdir())


def test_offline_with_nothing_present_lists_places_names_and_fix(tmp_path, monkeypatch, cache_home):
    monkeypatch.setattr(cifar_archive, "URL_BASE", (tmp_path / "no-such-mirror").as_uri() + "/")
    monkeypatch.setenv("CIFARLAB_DATA", str(tmp_path / "empty"))
    with pytest.raises(CifarlabError) as error:
        load_dataset("cifar10")
    message = str(error.value)
    for text in ("downloading", str(tmp_path / "empty"), str(cache_home), "$CIFARLAB_DATA",
                 "cifar-10-batches-py/", "cifar-10-python.tar.gz", "cifar10.zip", "cifar10.cache",
                 "set CIFARLAB_DATA", "root="):
        assert text in message
    assert not list((tmp_path / "empty").iterdir())  # no partial download left behind


def test_download_fetches_checks_md5_and_keeps_the_archive(tmp_path, monkeypatch, cache_home):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    members = cifar10_members()
    official(monkeypatch, "cifar10",
             write_tar(mirror / "cifar-10-python.tar.gz", "cifar-10-batches-py", members))
    monkeypatch.setattr(cifar_archive, "URL_BASE", mirror.as_uri() + "/")
    root = tmp_path / "fresh"
    ds = load_dataset("cifar10", root=root)
    assert torch.equal(ds.test_images, expected_images(members, ["test_batch"]))
    assert [p.name for p in root.iterdir()] == ["cifar-10-python.tar.gz"]


def test_download_with_wrong_md5_is_refused_and_not_kept(tmp_path, monkeypatch, cache_home):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    write_tar(mirror / "cifar-10-python.tar.gz", "cifar-10-batches-py", cifar10_members())
    monkeypatch.setattr(cifar_archive, "URL_BASE", mirror.as_uri() + "/")
    with pytest.raises(CifarlabError, match="has md5 .* expected c58f30108f718f92721af3b95e74349a"):
        load_dataset("cifar10", root=tmp_path / "fresh")
    assert not list((tmp_path / "fresh").iterdir())


def _refuse(*args, **kwargs):
    raise AssertionError("decoded again instead of reading the cache")


def test_second_load_reads_the_cache_without_decoding(tmp_path, monkeypatch, cache_home):
    root, _ = cifar10_archive(tmp_path, monkeypatch)
    first = load_dataset("cifar10", root=root)
    (root / "cifar-10-python.tar.gz").unlink()  # the cache alone must be enough now
    monkeypatch.setattr(cifar_archive, "read_archive", _refuse)
    second = load_dataset("cifar10", root=root)
    assert second.classes == first.classes
    for field in ("train_images", "train_labels", "test_images", "test_labels"):
        assert torch.equal(getattr(first, field), getattr(second, field))


def test_cache_left_in_the_data_root_is_a_source(tmp_path, monkeypatch, cache_home):
    root, _ = cifar10_archive(tmp_path, monkeypatch)
    first = load_dataset("cifar10", root=root)
    (cache_home / "cifar10.cache").rename(root / "cifar10.cache")
    (root / "cifar-10-python.tar.gz").unlink()
    assert torch.equal(load_dataset("cifar10", root=root).train_images, first.train_images)


def test_damaged_cache_is_reported_and_rebuilt(tmp_path, monkeypatch, cache_home):
    root, _ = cifar10_archive(tmp_path, monkeypatch)
    first = load_dataset("cifar10", root=root)
    cached = cache_home / "cifar10.cache"
    cached.write_bytes(cached.read_bytes()[:5000])
    with pytest.warns(UserWarning, match="ignoring the unreadable dataset cache"):
        again = load_dataset("cifar10", root=root)
    assert torch.equal(again.train_images, first.train_images)
    assert cache.read_cache(cached)[0]["train_images"].shape == first.train_images.shape


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
    write_tree_zip(archive, tree_images(["a", "b", "c"], {"train": 2, "test": 1}))
    assert load_dataset(f"folder:{archive}").num_classes == 3
    assert len(list(cache_home.iterdir())) == 2


def test_folder_without_a_test_split_explains_the_layout(tmp_path, cache_home):
    archive = write_tree_zip(tmp_path / "t.zip", tree_images(["a"], {"train": 2}))
    with pytest.raises(CifarlabError, match="no images under test/<class>/; lay it out as"):
        load_dataset(f"folder:{archive}")


def test_data_root_is_argument_then_environment_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFARLAB_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("CIFARLAB_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home" / ".cache" / "cifarlab"


def test_unknown_dataset_name_says_which_names_exist(cache_home):
    with pytest.raises(CifarlabError, match="unknown dataset 'mnist'; use cifar10, cifar100 or folder:PATH"):
        load_dataset("mnist")


@pytest.mark.slow
def test_real_cifar10_is_complete_and_loads_from_cache_in_under_a_second(cifar10):
    assert cifar10.train_images.shape == (50_000, 3, 32, 32)
    assert cifar10.test_images.shape == (10_000, 3, 32, 32)
    assert cifar10.classes == CIFAR10_NAMES
    assert torch.bincount(cifar10.train_labels).tolist() == [5000] * 10
    start = time.perf_counter()
    again = load_dataset("cifar10", download=False)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"cached CIFAR-10 took {elapsed:.2f} s"
    assert torch.equal(again.test_images, cifar10.test_images)


@pytest.mark.slow
def test_real_cifar100_has_100_fine_classes():
    ds = load_real("cifar100")
    assert ds.train_images.shape == (50_000, 3, 32, 32) and ds.test_images.shape == (10_000, 3, 32, 32)
    assert ds.num_classes == 100 and ds.classes[:3] == ["apple", "aquarium_fish", "baby"]
    assert torch.bincount(ds.test_labels).tolist() == [100] * 100
