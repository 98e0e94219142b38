"""Image-folder datasets: a directory or zip laid out `split/class/file`, decoded in parallel.

Zip members are read in place (no extraction). Decoding runs over a process pool once the
tree is large enough to repay starting it; each worker opens the source itself.

A folder may come from someone else: every image is opened by its header first and refused,
before a pixel is decoded, when it has more than `max_pixels` pixels (`data.max_image_pixels`)
or its file is larger than such an image could need. Links to folders are followed, but a link
back into the tree (a loop, or one folder reached twice) is an error, and so is anything that is
not a regular file (a pipe would block the read forever).
"""

from __future__ import annotations

import multiprocessing
import os
import re
import stat
import warnings
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Union

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

from cifarlab.config.fields import clip
from cifarlab.config.recipe import MAX_IMAGE_PIXELS
from cifarlab.errors import CifarlabError

SPLITS = ("train", "test")
_CHUNK = 500  # images per pool task: large enough that pickling results stays cheap
_POOL_FROM = 2000  # below this many images a pool costs more than it saves
_MAX_WORKERS = 8
_READ_ERRORS = (OSError, ValueError, SyntaxError, EOFError, zipfile.BadZipFile, zlib.error)
_ZIP_ERRORS = (RuntimeError, NotImplementedError)  # an encrypted member, a compression zipfile lacks
_BYTES_PER_PIXEL = 8  # 16-bit RGBA without compression: no image format needs more for its pixels
_METADATA_BYTES = 2**20  # room beside the pixels for EXIF, ICC profiles and text chunks


@dataclass(frozen=True)
class Tree:
    """What an image tree holds: sorted class names and, per split, (member, label) pairs."""

    path: Path
    classes: list[str]
    files: dict[str, list[tuple[str, int]]]


def read_image_folder(path: Path, max_pixels: int = MAX_IMAGE_PIXELS) -> tuple[list[str], dict[str, np.ndarray]]:
    """Decode every image of a tree or zip into CHW uint8 arrays and int64 labels; none may exceed `max_pixels`."""
    tree = list_tree(path)
    size = _first_size(path, tree.files["train"][0][0], max_pixels)
    arrays = {}
    for split in SPLITS:
        members = [member for member, _ in tree.files[split]]
        arrays[f"{split}_images"] = decode_images(path, members, size, f"decoding {split}", max_pixels)
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


def folder_files(path: Path) -> list[Path]:
    """The files of a directory tree that `list_tree` looks at (links to folders followed), sorted."""
    return sorted(path / member for member, parts in _dir_names(path) if parts[-1])


def _dir_names(path: Path) -> list[tuple[str, tuple[str, ...]]]:
    if not path.is_dir():
        raise CifarlabError(f"{path} does not exist; give an image folder or zip laid out "
                            "split/class/file")
    names = []
    reached: dict[tuple[int, int], str] = {}  # (device, inode) of each folder entered -> its name
    for split in SPLITS:
        for folder, files in _walk(path, split, reached):
            if folder.count("/") == 1:  # a class folder: listed even when empty
                names.append((folder + "/", (*folder.split("/"), "")))
            names += [(f"{folder}/{file}", (*folder.split("/"), file)) for file in files]
    return names


def _walk(root: Path, top: str, reached: dict[tuple[int, int], str]) -> Iterator[tuple[str, list[str]]]:
    """(folder relative to `root`, its file names) for `top` and every folder below it, hidden ones skipped.

    Links to folders are followed (a class folder may live elsewhere); each real folder is entered once,
    so a link back up the tree cannot loop and no image is counted twice.
    """
    stack = [top] if (root / top).is_dir() else []
    while stack:
        folder = stack.pop()
        try:
            info = os.stat(root / folder)
            with os.scandir(root / folder) as scan:
                entries = sorted((entry.name, _is_dir(entry)) for entry in scan if not entry.name.startswith("."))
        except OSError as exc:
            raise CifarlabError(f"cannot list {root / folder} ({exc.strerror or exc}); make the folder "
                                "readable or remove it") from None
        identity = (info.st_dev, info.st_ino)
        if identity in reached:
            raise CifarlabError(f"{root}: {folder} is the folder {reached[identity]} again, through a symbolic "
                                "link; an image folder may hold each folder once: remove the link")
        reached[identity] = folder
        yield folder, [name for name, is_dir in entries if not is_dir]
        stack += [f"{folder}/{name}" for name, is_dir in reversed(entries) if is_dir]


def _is_dir(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows a link; a dangling or looping one is listed as a file and refused when read
    except OSError:
        return False


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


def _first_size(path: Path, member: str, max_pixels: int) -> tuple[int, int]:
    with _open(path, member, max_pixels) as image:
        return image.size


def decode_images(path: Path, members: list[str], size: tuple[int, int], label: str,
                  max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode `members` of `path` (all `size` = (width, height)) into an (N, 3, H, W) uint8 array."""
    width, height = size
    out = np.empty((len(members), height, width, 3), dtype=np.uint8)
    tasks = [(str(path), members[i:i + _CHUNK], size, max_pixels) for i in range(0, len(members), _CHUNK)]
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


def _decode_chunk(task: tuple[str, list[str], tuple[int, int], int]) -> np.ndarray:
    """Pool task: decode a run of members into (n, H, W, 3) uint8; all must have `size`."""
    path, members, size, max_pixels = task
    out = np.empty((len(members), size[1], size[0], 3), dtype=np.uint8)
    for i, member in enumerate(members):
        with _open(Path(path), member, max_pixels) as image:
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


def _open(path: Path, member: str, max_pixels: int) -> Image.Image:
    """Open `member` of `path` reading its header only; refused before decoding when over `max_pixels`."""
    try:
        stream = _member_stream(path, member, max_pixels)
        image = _identify(stream, member)
    except Image.DecompressionBombError as exc:  # beyond even Pillow's own limit: its size is in the message
        found = re.search(r"\((\d+) pixels\)", str(exc))
        pixels = f"{int(found[1]):,} pixels" if found else "more pixels than Pillow opens"
        raise _too_large(path, member, f"{pixels}, more than the {max_pixels:,}", max_pixels) from None
    except _READ_ERRORS as exc:
        raise _unreadable(str(path), member, exc) from exc
    width, height = image.size
    if width * height > max_pixels:
        image.close()
        raise _too_large(path, member, f"{width}x{height} ({width * height:,} pixels), more than the {max_pixels:,}",
                         max_pixels)
    return image


def _member_stream(path: Path, member: str, max_pixels: int) -> Callable[[], Union[Path, IO[bytes]]]:
    """What opens `member`, once its file is known to be a regular file no larger than its pixels allow."""
    if path.is_dir():
        file = path / member
        info = os.stat(file)
        if not stat.S_ISREG(info.st_mode):
            raise CifarlabError(f"{path}: {member} is not a regular file (a pipe, a device or a folder); an image "
                                "folder holds image files only: remove it")
        size, opener = info.st_size, (lambda: file)
    else:
        key = (os.getpid(), str(path))
        if key not in _READERS:
            _READERS[key] = zipfile.ZipFile(path)
        archive, entry = _READERS[key], _READERS[key].getinfo(member)
        size = entry.file_size

        def opener() -> IO[bytes]:
            try:  # a stream, not the whole member: a header read never inflates more than it needs
                return archive.open(entry)
            except _ZIP_ERRORS as exc:
                raise _unreadable(str(path), member, exc) from exc
    limit = max_pixels * _BYTES_PER_PIXEL + _METADATA_BYTES
    if size > limit:
        raise _too_large(path, member, f"a file of {size:,} bytes, more than an image of {max_pixels:,}", max_pixels)
    return opener


def _identify(stream: Callable[[], Union[Path, IO[bytes]]], member: str) -> Image.Image:
    """Open trying the format the extension names first: it skips probing every plugin."""
    # The caller checks the size against its own, lower limit: Pillow's warning would only repeat it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        guess = Image.registered_extensions().get(PurePosixPath(member).suffix.lower())
        if guess:
            try:
                return Image.open(stream(), formats=[guess])
            except UnidentifiedImageError:
                pass  # a misnamed file: let Pillow probe all formats
        return Image.open(stream())


def _too_large(path: Path, member: str, found: str, max_pixels: int) -> CifarlabError:
    # `found` ends where the limit's unit follows: "16000x16000 (256,000,000 pixels), more than the 16,777,216"
    return CifarlabError(f"image {member} in {path} is {found} pixels cifarlab decodes (data.max_image_pixels, "
                         f"default {MAX_IMAGE_PIXELS:,} = 4096x4096); resize it to the dataset's size, or raise "
                         "data.max_image_pixels if its images really are this large")


def _unreadable(path: str, member: str, exc: Exception) -> CifarlabError:
    # Pillow names the stream it was given, which for a zip member is an object's repr: say it plainly.
    reason = "no image format Pillow reads" if isinstance(exc, UnidentifiedImageError) else " ".join(str(exc).split())
    return CifarlabError(f"cannot read image {member} in {path} ({clip(reason)}); the file is damaged "
                         "or not an image: replace or remove it")
