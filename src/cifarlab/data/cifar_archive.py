"""The official CIFAR python archives: what they hold, checking, downloading and reading them."""

from __future__ import annotations

import codecs
import hashlib
import io
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cifarlab.download import DownloadFailed, Received, download_file
from cifarlab.errors import CifarlabError

# Read at call time, so a mirror (or a local file:// folder) can stand in for it.
URL_BASE = "https://www.cs.toronto.edu/~kriz/"


@dataclass(frozen=True)
class Official:
    """One official CIFAR release: its archive, md5, extracted folder and pickle layout."""

    name: str
    title: str
    archive: str
    md5: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    labels_key: str
    names_key: str
    num_classes: int


OFFICIAL = {
    "cifar10": Official(
        "cifar10", "CIFAR-10", "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a",
        "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",),
        "batches.meta", "labels", "label_names", 10),
    "cifar100": Official(
        "cifar100", "CIFAR-100", "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python", ("train",), ("test",), "meta", "fine_labels", "fine_label_names", 100),
}



def file_digest(path: Path, algorithm: str) -> str:
    """Hex digest of a file, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def check_md5(spec: Official, path: Path) -> None:
    """Raise unless `path` has the official archive's md5."""
    found = file_digest(path, "md5")
    if found != spec.md5:
        raise CifarlabError(
            f"{path} has md5 {found}, the official {spec.title} archive has {spec.md5}: "
            f"the file is truncated or altered; delete it (cifarlab downloads it again) "
            f"or replace it with {URL_BASE}{spec.archive}"
        )


def download(spec: Official, folder: Path) -> Path:
    """Fetch the official archive into `folder` with a progress bar; md5-checked, renamed on success."""
    url = URL_BASE + spec.archive

    def verify(received: Received) -> None:
        if received.md5 != spec.md5:
            raise CifarlabError(
                f"the download of {url} has md5 {received.md5}, expected {spec.md5}: it was cut "
                f"short or altered on the way; run again, or fetch it by hand into {folder}"
            )

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadFailed(f"cannot create {folder} for {url} ({exc})") from exc
    download_file(url, folder / spec.archive, spec.archive, verify=verify)
    return folder / spec.archive


def read_archive(spec: Official, path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Decode the official .tar.gz (md5-checked) in one streaming pass, without extracting it."""
    check_md5(spec, path)
    wanted = {f"{spec.folder}/{name}" for name in (*spec.train_files, *spec.test_files,
                                                    spec.meta_file)}
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(path, "r|gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile():
                    members[member.name.split("/", 1)[1]] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise CifarlabError(
            f"cannot read {path} ({exc}): the archive is truncated or corrupt; delete it "
            f"(cifarlab downloads it again) or replace it with {URL_BASE}{spec.archive}"
        ) from exc
    missing = sorted(w.split("/", 1)[1] for w in wanted if w.split("/", 1)[1] not in members)
    if missing:
        raise CifarlabError(
            f"{path} lacks {', '.join(missing)} under {spec.folder}/: it is not the official "
            f"{spec.title} archive; replace it with {URL_BASE}{spec.archive}"
        )
    return _decode(spec, lambda name: members[name], str(path))


def read_folder(spec: Official, folder: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Decode an extracted official folder (`cifar-10-batches-py` or `cifar-100-python`)."""
    def read(name: str) -> bytes:
        try:
            return (folder / name).read_bytes()
        except OSError as exc:
            raise CifarlabError(
                f"cannot read {folder / name} ({exc.strerror}); the extracted folder is "
                f"incomplete: extract {spec.archive} again or delete {folder}"
            ) from exc
    return _decode(spec, read, str(folder))


def _decode(spec: Official, read, where: str) -> tuple[list[str], dict[str, np.ndarray]]:
    """Turn the pickled batches into CHW uint8 images and int64 labels."""
    meta = _unpickle(read(spec.meta_file), f"{where}/{spec.meta_file}")
    classes = [c.decode() if isinstance(c, bytes) else str(c)
               for c in _field(meta, spec.names_key, f"{where}/{spec.meta_file}")]
    if len(classes) != spec.num_classes:
        raise CifarlabError(f"{where}/{spec.meta_file} names {len(classes)} classes, "
                            f"{spec.title} has {spec.num_classes}; replace the damaged file")
    arrays = {}
    for split, names in (("train", spec.train_files), ("test", spec.test_files)):
        images, labels = zip(*(_batch(spec, read(n), f"{where}/{n}") for n in names))
        arrays[f"{split}_images"] = np.concatenate(images)
        arrays[f"{split}_labels"] = np.concatenate(labels)
    return classes, arrays


def _batch(spec: Official, raw: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    batch = _unpickle(raw, where)
    data = np.asarray(_field(batch, "data", where))
    labels = np.asarray(_field(batch, spec.labels_key, where), dtype=np.int64)
    if (data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32
            or len(labels) != len(data) or labels.min(initial=0) < 0
            or labels.max(initial=0) >= spec.num_classes):
        raise CifarlabError(
            f"{where} is not an official {spec.title} batch (data {data.dtype} {data.shape}, "
            f"{len(labels)} labels); replace it with the file from {URL_BASE}{spec.archive}"
        )
    # Rows hold the red, green and blue 32x32 planes one after another: CHW already.
    return data.reshape(-1, 3, 32, 32), labels


def _field(batch, key: str, where: str):
    for k in (key.encode(), key):
        if isinstance(batch, dict) and k in batch:
            return batch[k]
    raise CifarlabError(f"{where} has no '{key}' entry: it is not an official CIFAR batch; "
                        "replace it with the official file")


class _BatchUnpickler(pickle.Unpickler):
    """Unpickle only what a CIFAR batch holds (numpy arrays, dicts, lists), never arbitrary code."""

    def find_class(self, module: str, name: str):
        if module in ("numpy", "numpy.core.multiarray", "numpy._core.multiarray"):
            if name in ("_reconstruct", "scalar"):
                return getattr(_multiarray(), name)
            if name in ("ndarray", "dtype"):
                return getattr(np, name)
        if (module, name) == ("_codecs", "encode"):  # how Python 3 pickles bytes at protocol 2
            return codecs.encode
        raise pickle.UnpicklingError(f"{module}.{name} does not belong in a CIFAR batch")


def _multiarray():
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    return multiarray


def _unpickle(raw: bytes, where: str):
    try:
        return _BatchUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # a damaged pickle can fail in many ways; all mean the same here
        raise CifarlabError(
            f"cannot unpickle {where} ({type(exc).__name__}: {exc}): the file is damaged or "
            "not an official CIFAR batch; replace it with the official file"
        ) from exc
