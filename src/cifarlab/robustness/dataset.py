"""Corrupted test sets on disk, in the layout of the published CIFAR-10-C / CIFAR-100-C files.

A folder holds `<corruption>.npy`, uint8 (5 * N, 32, 32, 3): the N test images at severity 1,
then the same N at severity 2, ... 5; and `labels.npy`, the N labels repeated five times (the
published files store them as uint8). The published folders can be read as they are.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import BinaryIO, Optional

import numpy as np
import torch
from torch import Tensor

from cifarlab.atomic import atomic_path, output_folder
from cifarlab.errors import CifarlabError
from cifarlab.robustness.corruptions import (
    CORRUPTIONS,
    SEVERITIES,
    check_corruption,
    corrupt,
)
from cifarlab.robustness.textures import frost_photos

LABELS = "labels.npy"


def spaced_indices(total: int, limit: Optional[int]) -> Tensor:
    """`limit` indices spread evenly over range(total) (all of them without a limit).

    Test splits may be sorted by class (an image-folder zip is), so the first N images could
    all be one class; evenly spaced ones keep the classes in proportion.
    """
    if limit is None or limit >= total:
        return torch.arange(total)
    if limit < 1:
        raise CifarlabError(f"--limit {limit} must be at least 1")
    return torch.arange(limit) * total // limit


def corruption_file(name: str) -> str:
    """File name of one corruption's images: <name>.npy."""
    return f"{name}.npy"


class _WriteOnly:
    """Only a file's `write`: numpy then writes through Python's io in chunks, where a full disk is an OSError
    with errno ENOSPC that atomic_path explains, instead of `tofile`'s bare "N requested and M written"."""

    def __init__(self, handle: BinaryIO):
        self.write = handle.write


def _save_npy(path: Path, array: np.ndarray) -> Path:
    with atomic_path(path, hint="pass another --out folder") as tmp:
        with open(tmp, "wb") as handle:  # a handle, so numpy does not append .npy to the temp name
            np.save(_WriteOnly(handle), array)
    return path


def write_corrupted_set(
    images: Tensor,
    labels: Tensor,
    out_dir: str | os.PathLike,
    corruptions: Iterable[str] = CORRUPTIONS,
    seed: int = 0,
    on_written: Optional[Callable[[Path], None]] = None,
    frost_images: Optional[str | os.PathLike] = None,
) -> list[Path]:
    """Corrupt uint8 test images (N, 3, 32, 32) at every severity and write the published layout.

    Each file is written atomically once complete; `on_written(path)` is called after each.
    `frost_images`: a folder holding the published frost photographs, which frost then crops
    instead of the generated textures; checked before anything is written. Returns the paths
    written, labels.npy last.
    """
    names = [check_corruption(name) for name in corruptions]
    photos = frost_photos(frost_images) if frost_images is not None else None
    labels = torch.as_tensor(labels).long()
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise CifarlabError(f"{images.shape[0]} images but labels of shape {tuple(labels.shape)}; give one per image")
    if labels.numel() and int(labels.max()) > 255:
        raise CifarlabError("labels above 255 do not fit the published uint8 labels.npy; use at most 256 classes")
    written = []
    # A folder this call creates is removed again if it fails or is stopped: no partial set that looks whole.
    with output_folder(out_dir, hint="pass another --out folder") as folder:
        for name in names:
            stacked = torch.cat([corrupt(images, name, severity, seed, frost_photos=photos) for severity in SEVERITIES])
            written.append(_save_npy(folder / corruption_file(name), stacked.permute(0, 2, 3, 1).contiguous().numpy()))
            if on_written:
                on_written(written[-1])
        written.append(_save_npy(folder / LABELS, labels.repeat(len(SEVERITIES)).numpy().astype(np.uint8)))
        if on_written:
            on_written(written[-1])
    return written


def _load(path: Path) -> np.ndarray:
    if not path.is_file():
        raise CifarlabError(f"no {path.name} in {path.parent}; write the set with `cifarlab robustness make` "
                            f"or point --data to a CIFAR-10-C / CIFAR-100-C folder")
    try:
        return np.load(path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise CifarlabError(f"{path} is not a readable .npy file ({exc}); write it again") from exc


def read_stacked(path: str | os.PathLike, severity: int, limit: Optional[int] = None) -> Tensor:
    """The images of one severity of a stacked file (5 * N, 32, 32, 3) as uint8 (n, 3, 32, 32).

    With `limit`, `spaced_indices(N, limit)` of them.
    """
    path = Path(path)
    array = _load(path)
    if array.dtype != np.uint8 or array.ndim != 4 or array.shape[-1] != 3 or array.shape[0] % len(SEVERITIES):
        raise CifarlabError(f"{path} holds {array.dtype} {array.shape}, not uint8 (5 * N, H, W, 3) with the "
                            "five severities stacked; write it again with `cifarlab robustness make`")
    per_severity = array.shape[0] // len(SEVERITIES)
    rows = (severity - 1) * per_severity + spaced_indices(per_severity, limit).numpy()
    return torch.from_numpy(np.array(array[rows])).permute(0, 3, 1, 2).contiguous()


def read_corruption(folder: str | os.PathLike, name: str, severity: int, limit: Optional[int] = None) -> Tensor:
    """One corruption at one severity from a corrupted-set folder: uint8 (n, 3, 32, 32)."""
    return read_stacked(Path(folder) / corruption_file(check_corruption(name)), severity, limit)


def read_labels(folder: str | os.PathLike, limit: Optional[int] = None) -> Tensor:
    """The labels of one severity (the first N of labels.npy; `spaced_indices(N, limit)` of them) as int64."""
    path = Path(folder) / LABELS
    labels = _load(path)
    if labels.ndim != 1 or labels.shape[0] % len(SEVERITIES):
        raise CifarlabError(f"{path} has shape {labels.shape}, not (5 * N,); write it again with "
                            "`cifarlab robustness make`")
    per_severity = labels.shape[0] // len(SEVERITIES)
    return torch.from_numpy(np.array(labels[spaced_indices(per_severity, limit).numpy()]).astype(np.int64))


def corruptions_in(folder: str | os.PathLike, wanted: Optional[Sequence[str]] = None) -> list[str]:
    """The corruptions (of `wanted`, default all) whose files a folder holds, in `CORRUPTIONS` order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CifarlabError(f"corrupted-set folder {folder} does not exist; write one with "
                            f"`cifarlab robustness make DATASET --out {folder}`")
    names = [check_corruption(name) for name in wanted] if wanted else list(CORRUPTIONS)
    present = [name for name in names if (folder / corruption_file(name)).is_file()]
    missing = [name for name in names if name not in present]
    if wanted and missing:
        raise CifarlabError(f"{folder} has no {', '.join(corruption_file(name) for name in missing)}; "
                            "drop those from --corruptions or write them with `cifarlab robustness make`")
    if not present:
        raise CifarlabError(f"{folder} holds none of the corruption files (<corruption>.npy); write them with "
                            "`cifarlab robustness make`")
    return present
