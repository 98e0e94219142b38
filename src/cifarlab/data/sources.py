"""Load a dataset by name (`cifar10`, `cifar100`, `folder:PATH`) as uint8 tensors, decoding once.

Where data lives is decided in one place, `data_root`: the `root` argument, else
`$CIFARLAB_DATA`, else `~/.cache/cifarlab`. That folder may be read-only; decoded datasets
go to `cache.cache_dir()` instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from cifarlab.config.recipe import MAX_IMAGE_PIXELS
from cifarlab.data import cache, cifar_archive, image_folder
from cifarlab.data.cifar_archive import OFFICIAL, Official
from cifarlab.errors import CifarlabError

_ARRAYS = ("train_images", "train_labels", "test_images", "test_labels")


@dataclass(frozen=True, eq=False)  # tensors have no single truth value to compare by
class Dataset:
    """A decoded dataset: CHW uint8 images and int64 labels; labels index `classes`."""

    name: str
    classes: list[str]
    train_images: torch.Tensor = field(repr=False)
    train_labels: torch.Tensor = field(repr=False)
    test_images: torch.Tensor = field(repr=False)
    test_labels: torch.Tensor = field(repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The folder datasets are looked for in: `root`, else `$CIFARLAB_DATA`, else `~/.cache/cifarlab`."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("CIFARLAB_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "cifarlab"


def load_dataset(name: str, root: str | os.PathLike | None = None, *,
                 download: bool = True, max_image_pixels: int = MAX_IMAGE_PIXELS) -> Dataset:
    """Load `cifar10`, `cifar100` or `folder:PATH`, from the decoded cache when it has it.

    An image of a folder with more than `max_image_pixels` pixels is refused before it is decoded.
    """
    key = _canonical(name)
    if key in OFFICIAL:
        return _load_cifar(OFFICIAL[key], data_root(root), download, _origin(root))
    return _load_folder(name, _folder_path(name.split(":", 1)[1], data_root(root)), max_image_pixels)


def _canonical(name: str) -> str:
    if name.startswith("folder:") and len(name) > len("folder:"):
        return "folder"
    key = name.strip().lower().replace("-", "").replace("_", "")
    if key not in OFFICIAL:
        raise CifarlabError(f"unknown dataset '{name}'; use cifar10, cifar100 or folder:PATH "
                            "(an image folder or zip laid out split/class/file)")
    return key


def _origin(root) -> str:
    if root is not None:
        return "the root argument"
    return "$CIFARLAB_DATA" if os.environ.get("CIFARLAB_DATA") else "the default (CIFARLAB_DATA unset)"


def _load_cifar(spec: Official, root: Path, download: bool, origin: str) -> Dataset:
    file = spec.name + cache.SUFFIX
    for path in _cifar_cache_candidates(spec, root):
        dataset = _read_cached(path, spec.name, spec.num_classes)
        if dataset is not None:
            return dataset
    source = _find_cifar_source(spec, root)
    if source is None:
        if not download:
            raise _not_found(spec, root, origin, "downloading is turned off")
        try:
            source = cifar_archive.download(spec, root)
        except cifar_archive.DownloadFailed as exc:
            raise _not_found(spec, root, origin, str(exc)) from exc
    if source.suffix == ".zip":
        classes, arrays = _read_cifar_zip(spec, source)
    elif source.is_dir():
        classes, arrays = cifar_archive.read_folder(spec, source)
    else:
        classes, arrays = cifar_archive.read_archive(spec, source)
    return _store(cache.cache_dir() / file, spec.name, classes, arrays, source)


def _cifar_cache_candidates(spec: Official, root: Path) -> list[Path]:
    """Decoded caches of `spec`, in the order they are tried; the first is where a fresh one is written."""
    file = spec.name + cache.SUFFIX
    # A cache left in the data folder itself (e.g. a shared read-only copy) counts as a source.
    return list(dict.fromkeys([cache.cache_dir() / file, root / file, root / "cache" / file]))


def dataset_origin(name: str, root: str | os.PathLike | None = None) -> dict[str, str]:
    """Where a dataset's images come from: data root, source file or folder, decoded cache, known checksums.

    Reads no images: call it after `load_dataset` to describe what that call used.
    """
    key = _canonical(name)
    root_path = data_root(root)
    origin = {"data root": f"{root_path} (from {_origin(root)})"}
    if key not in OFFICIAL:
        folder = _folder_path(name.split(":", 1)[1], root_path)
        cached = cache.cache_dir() / f"folder-{folder.stem}-{_folder_key(folder)}{cache.SUFFIX}"
        return {**origin, "source": str(folder), "cache": _cache_state(cached)}
    spec = OFFICIAL[key]
    candidates = _cifar_cache_candidates(spec, root_path)
    cached = next((path for path in candidates if path.is_file()), candidates[0])
    source = _find_cifar_source(spec, root_path)
    origin.update(source=str(source) if source else "none in the data root (the cache is used)",
                  cache=_cache_state(cached))
    if source is not None and source.suffix == ".zip":
        manifest = source.with_suffix(".json")
        try:
            recorded = json.loads(manifest.read_text()) if manifest.is_file() else {}
        except (OSError, ValueError):
            recorded = {}
        for field_name in ("sha256", "pixel_sha256"):
            if field_name in recorded:
                label = "pixel sha256" if field_name == "pixel_sha256" else "zip sha256"
                origin[label] = f"{recorded[field_name]} (recorded in {manifest.name}, checked when decoded)"
    elif source is not None and source.name == spec.archive:
        origin["archive md5"] = f"{spec.md5} (official, checked when decoded)"
    return origin


def _cache_state(path: Path) -> str:
    if path.is_file():
        return f"{path} ({path.stat().st_size / 2**20:.0f} MiB)"
    return f"{path} (not written yet: the first load decodes the source into it)"


def _find_cifar_source(spec: Official, root: Path) -> Path | None:
    """The first CIFAR source present in `root`: extracted folder, official archive, zip."""
    for candidate in (root / spec.folder, root / spec.archive, root / f"{spec.name}.zip"):
        if candidate.exists():
            return candidate
    return None


def _read_cifar_zip(spec: Official, path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Decode `cifar10.zip`-style trees, checked against the sha256 in the JSON beside them."""
    manifest = path.with_suffix(".json")
    try:
        expected = json.loads(manifest.read_text()) if manifest.exists() else {}
    except (OSError, ValueError) as exc:
        raise CifarlabError(f"cannot read {manifest} ({exc}); restore it from the copy it came "
                            f"with, or delete it to skip the zip's checksum") from exc
    if "sha256" in expected:
        found = cifar_archive.file_digest(path, "sha256")
        if found != expected["sha256"]:
            raise CifarlabError(
                f"{path} has sha256 {found}, {manifest.name} says {expected['sha256']}: the zip "
                f"is truncated or altered; copy it again, or delete it and {manifest.name} "
                f"to download the official archive instead"
            )
    classes, arrays = image_folder.read_image_folder(path)
    counts = {split: len(arrays[f"{split}_labels"]) for split in ("train", "test")}
    if len(classes) != spec.num_classes or counts != expected.get("images", counts):
        raise CifarlabError(
            f"{path} holds {len(classes)} class folders and {counts} images, {spec.title} has "
            f"{spec.num_classes} classes and {expected.get('images', 'the official counts')}; "
            "replace it with a complete copy"
        )
    if "pixel_sha256" in expected and _pixel_sha256(arrays) != expected["pixel_sha256"]:
        raise CifarlabError(
            f"the images decoded from {path} differ from the pixels {manifest.name} records: "
            f"this Pillow decodes them differently; upgrade Pillow, or put the official "
            f"{spec.archive} beside it"
        )
    return classes, arrays


def _pixel_sha256(arrays: dict[str, np.ndarray]) -> str:
    """sha256 of the pixels as the zip's manifest records them: test then train, HWC, member order."""
    digest = hashlib.sha256()
    for split in ("test", "train"):
        images = arrays[f"{split}_images"]
        for start in range(0, len(images), 4096):
            digest.update(np.ascontiguousarray(images[start:start + 4096].transpose(0, 2, 3, 1)))
    return digest.hexdigest()


def _not_found(spec: Official, root: Path, origin: str, reason: str) -> CifarlabError:
    accepted = [f"{spec.name}{cache.SUFFIX} (cifarlab's cache)", f"{spec.folder}/ (extracted)",
                f"{spec.archive} (official archive)", f"{spec.name}.zip (split/class/image zip)"]
    places = dict.fromkeys([cache.cache_dir(), root, root / "cache"])
    return CifarlabError(
        f"{spec.title} was not found and {reason}.\n"
        f"Looked in: {', '.join(str(p) for p in places)} (data root from {origin}).\n"
        f"Accepted there: {'; '.join(accepted)}.\n"
        f"Fix: put one of these in a folder and set CIFARLAB_DATA to it (or pass root=...), "
        f"or connect to the network so cifarlab can download {cifar_archive.URL_BASE}{spec.archive}."
    )


def _folder_path(given: str, root: Path) -> Path:
    """`folder:PATH` as given, else relative to the data root."""
    path = Path(given).expanduser()
    if not path.exists() and not path.is_absolute() and (root / path).exists():
        path = root / path
    if not path.exists():
        raise CifarlabError(f"image folder {given} not found (also looked in {root}); give an "
                            "existing folder or zip laid out split/class/file")
    return path.resolve()


def _folder_key(path: Path) -> str:
    """Hash of the tree's path, sizes and modification times: any edit gives a fresh cache."""
    digest = hashlib.sha256(str(path).encode())
    # The files the folder's listing reads, links to class folders kept elsewhere included.
    for file in [path] if path.is_file() else image_folder.folder_files(path):
        try:
            stat = file.stat()
        except OSError:  # a dangling link: reading it says so
            continue
        digest.update(f"{file}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _load_folder(name: str, path: Path, max_image_pixels: int) -> Dataset:
    file = cache.cache_dir() / f"folder-{path.stem}-{_folder_key(path)}{cache.SUFFIX}"
    dataset = _read_cached(file, name)
    if dataset is not None:
        return dataset
    classes, arrays = image_folder.read_image_folder(path, max_image_pixels)
    dataset = _store(file, name, classes, arrays, path)
    _remove_older_caches(file, path)
    return dataset


def _remove_older_caches(current: Path, folder: Path) -> None:
    """Delete the caches of earlier states of `folder`: each edit of a tree makes a new cache, and without
    this a folder edited ten times would keep ten decoded copies. Caches of other folders with the same
    name are told apart by the source path in their header and kept."""
    for other in current.parent.glob(f"folder-{folder.stem}-*{cache.SUFFIX}"):
        if other != current and (cache.read_meta(other) or {}).get("source") == str(folder):
            try:
                other.unlink()
            except OSError:  # another process may be reading it, or removed it first: it is only a cache
                pass


def _store(path: Path, name: str, classes: list[str], arrays: dict[str, np.ndarray],
           source: Path) -> Dataset:
    cache.write_cache(path, {k: arrays[k] for k in _ARRAYS},
                      {"name": name, "classes": classes, "source": str(source)})
    return Dataset(name, list(classes), *(torch.from_numpy(arrays[k]) for k in _ARRAYS))


def _read_cached(path: Path, name: str, num_classes: int | None = None) -> Dataset | None:
    """The cached dataset at `path`, or None when absent; a damaged cache is reported and skipped."""
    if not path.is_file():
        return None
    try:
        arrays, meta = cache.read_cache(path)
        dataset = Dataset(name, list(meta["classes"]), *(arrays[k] for k in _ARRAYS))
        _check(dataset)
        if num_classes not in (None, dataset.num_classes):
            raise ValueError(f"it holds {dataset.num_classes} classes, {name} has {num_classes}")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warnings.warn(f"ignoring the unreadable dataset cache {path} ({exc}); decoding again",
                      stacklevel=3)
        return None
    return dataset


def _check(ds: Dataset) -> None:
    for split in ("train", "test"):
        images, labels = getattr(ds, f"{split}_images"), getattr(ds, f"{split}_labels")
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"{split} images are {images.dtype} {tuple(images.shape)}")
        if labels.shape != (len(images),) or (len(labels) and int(labels.max()) >= ds.num_classes):
            raise ValueError(f"{split} labels do not match the images or classes")
