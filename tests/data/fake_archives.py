"""Small datasets in the formats cifarlab reads, built inside tests (official pickles, trees, zips)."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import pickle
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cifarlab.data import cifar_archive

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                 "truck"]
PER_BATCH = 20  # images in each fake batch: two of every CIFAR-10 class


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
