"""Image-folder datasets: a directory or zip laid out `split/class/file`, decoded in parallel.

Zip members are read in place (no extraction). Decoding runs over a process pool once the
tree is large enough to repay starting it; each worker opens the source itself.
"""

from __future__ import annotations

import io
import multiprocessing
import os
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, UnidentifiedImageError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)

from cifarlab.errors import CifarlabError

SPLITS = ("train", "test")
_CHUNK = 500  # images per pool task: large enough that pickling results stays cheap
_POOL_FROM = 2000  # below this many images a pool costs more than it saves
_MAX_WORKERS = 8
_READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, zipfile.BadZipFile, zlib.error)


@dataclass(frozen=True)
class Tree:
    """What an image tree holds: sorted class names and, per split, (member, label) pairs."""

    path: Path
    classes: list[str]
    files: dict[str, list[tuple[str, int]]]


def read_image_folder(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Decode every image of a tree or zip into CHW uint8 arrays and int64 labels."""
    tree = list_tree(path)
    size = _first_size(path, tree.files["train"][0][0])
    arrays = {}
    for split in SPLITS:
        members = [member for member, _ in tree.files[split]]
        arrays[f"{split}_images"] = decode_images(path, members, size, f"decoding {split}")
        arrays[f"{split}_labels"] = np.array([label for _, label in tree.files[split]],
                                             dtype=np.int64)
    return tree.classes, arrays


def list_tree(path: Path) -> Tree:
    """List the images under `split/class/` of a directory or zip; classes sorted by name."""
    names = _zip_names(path) if path.is_file() else _dir_names(path)
    extensions = set(Image.registered_extensions())
    by_split: dict[str, list[tuple[str, str]]] = {split: [] for split in SPLITS}
    for member, parts in names:
        is_image = PurePosixPath(member).suffix.lower() in extensions
        if len(parts) >= 3 and parts[0] in by_split and is_image:
            by_split[parts[0]].append((member, parts[1]))
    layout = f"lay it out as {path}/train/<class>/<image> and {path}/test/<class>/<image>"
    for split in SPLITS:
        if not by_split[split]:
            raise CifarlabError(f"{path} has no images under {split}/<class>/; {layout}")
    classes = sorted({cls for pairs in by_split.values() for _, cls in pairs})
    _warn_empty_classes(path, names, classes)
    without_train = sorted(set(classes) - {cls for _, cls in by_split["train"]})
    if without_train:
        raise CifarlabError(f"{path}: classes {', '.join(without_train)} have test images but "
                            f"no train images; {layout}")
    label = {cls: i for i, cls in enumerate(classes)}
    files = {split: [(m, label[c]) for m, c in sorted(pairs)] for split, pairs in by_split.items()}
    return Tree(path, classes, files)


def _warn_empty_classes(path: Path, names: list[tuple[str, tuple[str, ...]]], classes: list[str]) -> None:
    """Warn about class folders without a single image in any split: such a class cannot be learnt."""
    folders: dict[str, list[str]] = {}
    for _, parts in names:
        if len(parts) >= 3 and parts[0] in SPLITS and parts[1]:
            folders.setdefault(parts[1], [])
            if parts[0] not in folders[parts[1]]:
                folders[parts[1]].append(parts[0])
    empty = sorted(set(folders) - set(classes))
    if empty:
        shown = ", ".join(f"{split}/{cls}" for cls in empty for split in sorted(folders[cls]))
        verb = "holds no images and is" if len(empty) == 1 else "hold no images and are"
        warnings.warn(f"{path}: class folder {shown} {verb} left out ({len(classes)} classes remain); "
                      "add images to it or remove the folder", stacklevel=3)


def _dir_names(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    if not path.is_dir():
        raise CifarlabError(f"{path} does not exist; give an image folder or zip laid out "
                            "split/class/file")
    names = []
    for split in SPLITS:
        for folder, dirs, files in os.walk(path / split):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            rel_folder = Path(folder).relative_to(path).as_posix()
            if rel_folder.count("/") == 1:  # a class folder: listed even when empty
                names.append((rel_folder + "/", (*rel_folder.split("/"), "")))
            for file in files:
                if not file.startswith("."):
                    rel = Path(folder, file).relative_to(path).as_posix()
                    names.append((rel, tuple(rel.split("/"))))
    return names


def _zip_names(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.namelist()  # folder entries (`train/cat/`) too: they name empty classes
    except (zipfile.BadZipFile, OSError) as exc:
        raise CifarlabError(f"cannot open {path} as a zip ({exc}); the file is truncated or "
                            "not a zip: replace it or give a folder instead") from exc
    parts = {m: tuple(m.split("/")) for m in members
             if not any(p.startswith(".") or p == "__MACOSX" for p in m.split("/"))}
    # Zips made by zipping a folder wrap everything in that folder's name: look inside it.
    tops = {p[0] for p in parts.values()}
    if len(tops) == 1 and not tops & set(SPLITS):
        parts = {m: p[1:] for m, p in parts.items()}
    return list(parts.items())


def _first_size(path: Path, member: str) -> tuple[int, int]:
    with _open(path, member) as image:
        return image.size


def decode_images(path: Path, members: list[str], size: tuple[int, int], label: str) -> np.ndarray:
    """Decode `members` of `path` (all `size` = (width, height)) into an (N, 3, H, W) uint8 array."""
    width, height = size
    out = np.empty((len(members), height, width, 3), dtype=np.uint8)
    tasks = [(str(path), members[i:i + _CHUNK], size) for i in range(0, len(members), _CHUNK)]
    workers = _worker_count(len(members))
    # The pool is forked before the progress bar starts its refresh thread.
    pool = multiprocessing.Pool(workers) if workers > 1 else None
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    try:
        with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
            task = progress.add_task(label, total=len(members))
            chunks = pool.imap(_decode_chunk, tasks) if pool else map(_decode_chunk, tasks)
            start = 0
            for chunk in chunks:
                out[start:start + len(chunk)] = chunk
                start += len(chunk)
                progress.advance(task, len(chunk))
    finally:
        if pool:
            pool.terminate()
        _close_readers()
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _worker_count(n: int) -> int:
    if n < _POOL_FROM:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(cores or 1, _MAX_WORKERS))


def _decode_chunk(task: tuple[str, list[str], tuple[int, int]]) -> np.ndarray:
    """Pool task: decode a run of members into (n, H, W, 3) uint8; all must have `size`."""
    path, members, size = task
    out = np.empty((len(members), size[1], size[0], 3), dtype=np.uint8)
    for i, member in enumerate(members):
        with _open(Path(path), member) as image:
            if image.size != size:
                raise CifarlabError(
                    f"{path}: {member} is {image.size[0]}x{image.size[1]}, the dataset's images "
                    f"are {size[0]}x{size[1]}; all images must share one size: resize it"
                )
            try:
                out[i] = np.asarray(image if image.mode == "RGB" else image.convert("RGB"))
            except _READ_ERRORS as exc:
                raise _unreadable(path, member, exc) from exc
    return out


# One open zip per (process, path): forked workers must not share the parent's file offset.
_READERS: dict[tuple[int, str], zipfile.ZipFile] = {}


def _close_readers() -> None:
    for key in [key for key in _READERS if key[0] == os.getpid()]:
        _READERS.pop(key).close()


def _open(path: Path, member: str) -> Image.Image:
    try:
        if path.is_dir():
            return _identify(lambda: path / member, member)
        key = (os.getpid(), str(path))
        if key not in _READERS:
            _READERS[key] = zipfile.ZipFile(path)
        raw = _READERS[key].read(member)
        return _identify(lambda: io.BytesIO(raw), member)
    except _READ_ERRORS as exc:
        raise _unreadable(str(path), member, exc) from exc


def _identify(stream, member: str) -> Image.Image:
    """Open trying the format the extension names first: it skips probing every plugin."""
    guess = Image.registered_extensions().get(PurePosixPath(member).suffix.lower())
    if guess:
        try:
            return Image.open(stream(), formats=[guess])
        except UnidentifiedImageError:
            pass  # a misnamed file: let Pillow probe all formats
    return Image.open(stream())


def _unreadable(path: str, member: str, exc: Exception) -> CifarlabError:
    return CifarlabError(f"cannot read image {member} in {path} ({exc}); the file is damaged "
                         "or not an image: replace or remove it")
