"""Submission files: `id,label` rows of a run's predicted class indices on a test set.

For a dataset name (cifar10, cifar100, folder:PATH) the rows are its test split and `id` is
the image's index. For a corrupted-set folder the ids are DL4DS's Kaggle ids
`distortionNN_severity_index`: NN numbers the files, severity runs 1-5 and index restarts
at 0 in each severity. A folder of DL4DS files (distortion00.npy ... distortion18.npy) keeps
its numbering; a folder in the CIFAR-10-C layout numbers each corruption by its place in
`CORRUPTIONS`: 00 gaussian_noise, 01 shot_noise, 02 impulse_noise, 03 defocus_blur,
04 glass_blur, 05 motion_blur, 06 zoom_blur, 07 snow, 08 frost, 09 fog, 10 brightness,
11 contrast, 12 elastic_transform, 13 pixelate, 14 jpeg_compression, 15 speckle_noise,
16 gaussian_blur, 17 spatter, 18 saturate.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Optional

import numpy as np
from torch import Tensor, nn

from cifarlab import runs
from cifarlab.atomic import write_text
from cifarlab.data import load_dataset
from cifarlab.errors import CifarlabError
from cifarlab.evaluation import EvalSettings, predict, run_settings
from cifarlab.evaluation.tta import check_tta_mode
from cifarlab.robustness.corruptions import CORRUPTIONS, SEVERITIES
from cifarlab.robustness.dataset import corruption_file, read_stacked, spaced_indices
from cifarlab.tables import csv_rows_text
from cifarlab.training.allocator import allocator_setting
from cifarlab.training.distributed import pick_device

_DISTORTION_FILE = re.compile(r"distortion(\d{2})\.npy")


def distortion_files(folder: str | os.PathLike) -> list[tuple[int, Path]]:
    """(NN, file) of each corruption file of a folder, by NN: DL4DS names first, else CORRUPTIONS' order."""
    folder = Path(folder)
    numbered = sorted((int(m.group(1)), path) for path in folder.glob("distortion*.npy")
                      if (m := _DISTORTION_FILE.fullmatch(path.name)))
    if numbered:
        return numbered
    return [(number, folder / corruption_file(name)) for number, name in enumerate(CORRUPTIONS)
            if (folder / corruption_file(name)).is_file()]


def _per_severity(path: Path) -> int:
    return np.load(path, mmap_mode="r").shape[0] // len(SEVERITIES)


def _rows(probs: Tensor, ids: list[str]) -> list[tuple[str, int]]:
    return list(zip(ids, probs.argmax(dim=1).tolist()))


def write_submission(run_dir: str | os.PathLike, data: str | os.PathLike, out: str | os.PathLike,
                     *, tta: Optional[str] = None, limit: Optional[int] = None, device: str = "auto") -> int:
    """Predict `data` with a run's model and write `out` as `id,label` CSV; returns the row count.

    `data` is a dataset name or a corrupted-set folder; `limit` keeps N evenly spaced images
    (of each severity, for a folder), whose ids keep their full-set index; `tta` defaults to
    the recipe's; the model runs on `device` (`auto`: the GPU if there is one).
    """
    run = runs.load_run(run_dir)
    tta = check_tta_mode(tta or run.recipe.eval.tta)
    model = run.model.to(pick_device(device))
    # As the run's own test evaluation: its precision, memory format and preprocessing (CLAHE too, after
    # any corruption), so the labels are the ones it scored.
    settings = run_settings(model, run.recipe, run.mean, run.std, tta=tta)
    with allocator_setting(run.recipe.train.allocator):
        rows = _predicted_rows(model, data, settings, limit)
    write_text(out, csv_rows_text(("id", "label"), rows))
    return len(rows)


def _predicted_rows(model: nn.Module, data: str | os.PathLike, settings: EvalSettings, limit: Optional[int]) -> list[tuple[str, int]]:
    rows: list[tuple[str, int]] = []
    folder = Path(data)
    if folder.is_dir():
        files = distortion_files(folder)
        if not files:
            raise CifarlabError(f"{folder} holds no distortionNN.npy or <corruption>.npy files; point --data to "
                                "a corrupted-set folder or give a dataset name (cifar10, cifar100)")
        for number, path in files:
            indexes = spaced_indices(_per_severity(path), limit).tolist()
            for severity in SEVERITIES:
                images = read_stacked(path, severity, limit)
                ids = [f"distortion{number:02d}_{severity}_{index}" for index in indexes]
                rows += _rows(predict(model, images, settings), ids)
    else:
        test = load_dataset(str(data)).test_images
        chosen = spaced_indices(len(test), limit)
        rows = _rows(predict(model, test[chosen], settings), [str(index) for index in chosen.tolist()])
    return rows
