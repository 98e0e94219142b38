"""load_dataset: every accepted source, checksums, download, offline errors and the decoded cache."""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from cifarlab.data import cache, cifar_archive, load_dataset, sources
from cifarlab.data.sources import data_root
from cifarlab.errors import CifarlabError
from tests.conftest import load_real
from tests.data.fake_archives import (  # noqa: F401
    CIFAR10_NAMES,
    PER_BATCH,
    cifar10_members,
    cifar100_members,
    expected_images,
    official,
    tree_images,
    write_tar,
    write_tree_zip,
)


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


def test_cifar_zip_whose_pixels_differ_from_its_manifest_is_refused(tmp_path, cache_home):
    images = tree_images(CIFAR10_NAMES, {"train": 1, "test": 1})
    archive = write_tree_zip(tmp_path / "cifar10.zip", images)
    test_then_train = np.stack([images[k] for k in sorted(images)])  # the manifest's pixel order
    (tmp_path / "cifar10.json").write_text(json.dumps({
        "sha256": hashlib.sha256(archive.read_bytes()).hexdigest(),
        "images": {"train": 10, "test": 10},
        "pixel_sha256": hashlib.sha256(test_then_train.tobytes()).hexdigest()}))
    assert load_dataset("cifar10", root=tmp_path).num_classes == 10
    (cache_home / "cifar10.cache").unlink()
    manifest = json.loads((tmp_path / "cifar10.json").read_text())
    (tmp_path / "cifar10.json").write_text(json.dumps({**manifest, "pixel_sha256": "0" * 64}))
    with pytest.raises(CifarlabError, match="differ from the pixels cifar10.json records"):
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
def test_real_cifar10_is_complete_and_loads_again_from_its_cache_without_decoding(cifar10, monkeypatch):
    assert cifar10.train_images.shape == (50_000, 3, 32, 32)
    assert cifar10.test_images.shape == (10_000, 3, 32, 32)
    assert cifar10.classes == CIFAR10_NAMES
    assert torch.bincount(cifar10.train_labels).tolist() == [5000] * 10

    def decoding(*args, **kwargs):
        raise AssertionError("the images were decoded again instead of read from the cache")

    # A wall-time bound would fail on a busy machine; that nothing is decoded is what makes it fast.
    monkeypatch.setattr(sources, "_read_cifar_zip", decoding)
    monkeypatch.setattr(cifar_archive, "read_archive", decoding)
    monkeypatch.setattr(cifar_archive, "read_folder", decoding)
    again = load_dataset("cifar10", download=False)
    assert torch.equal(again.test_images, cifar10.test_images)


@pytest.mark.slow
def test_real_cifar100_has_100_fine_classes():
    ds = load_real("cifar100")
    assert ds.train_images.shape == (50_000, 3, 32, 32) and ds.test_images.shape == (10_000, 3, 32, 32)
    assert ds.num_classes == 100 and ds.classes[:3] == ["apple", "aquarium_fish", "baby"]
    assert torch.bincount(ds.test_labels).tolist() == [100] * 100
