"""Landscape slices of trained runs: a fixed evaluation subset, the slice, its arrays (.npz) and figures.

Files written into the output folder (default RUN/landscape, or RUN_A/interpolation-<RUN_B>):
    landscape.npz               coordinates, loss and accuracy (P or P x P, indexed [x, y]) and settings
    landscape_1d.png            loss and accuracy along one direction (--dims 1)
    landscape_contour.png       filled loss contours over two directions (--dims 2)
    landscape_surface.png       the same as a 3-D surface
    interpolation.npz/.png      loss and accuracy along (1 - alpha) A + alpha B
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from cifarlab.analysis.explain import split_images
from cifarlab.analysis.landscape import (
    Endpoint,
    interpolate,
    random_direction,
    slice_surface,
)
from cifarlab.analysis.landscape_plots import plot_contour, plot_curve, plot_surface
from cifarlab.atomic import atomic_path, output_folder
from cifarlab.errors import CifarlabError
from cifarlab.evaluation.preprocessing import preprocess
from cifarlab.evaluation.settings import run_preprocessing
from cifarlab.runs import Run, load_run
from cifarlab.training.allocator import allocator_setting

NPZ = "landscape.npz"
CURVE = "landscape_1d.png"
CONTOUR = "landscape_contour.png"
SURFACE = "landscape_surface.png"
INTERPOLATION_NPZ = "interpolation.npz"
INTERPOLATION_PLOT = "interpolation.png"


@dataclass
class Subset:
    """The fixed evaluation images: [0, 1] pixels at the model's evaluation size, labels, dataset indices."""

    pixels: Tensor
    labels: Tensor
    indices: Tensor


def _check_batch_size(batch_size: int) -> None:
    if batch_size < 1:
        raise CifarlabError(f"--batch-size {batch_size}: evaluate at least 1 image per forward pass (default 500)")


def evaluation_subset(run: Run, count: int, split: str, seed: int, device: torch.device) -> Subset:
    """`count` images drawn (seeded) from the run's `split`, scaled to [0, 1] and resized as the run
    evaluates, on `device`. The split is sorted by class, hence the random draw."""
    if count < 1:
        raise CifarlabError(f"--images {count}: evaluate on at least 1 image")
    images, labels = split_images(run, split)
    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:count]
    # The run's preprocessing up to its mean/std step (applied per run later): CLAHE, then the geometry.
    preprocessing = run_preprocessing(run.model, run.recipe, run.mean, run.std)
    picked = images[order].to(device)
    picked = preprocessing.clahe(picked) if preprocessing.clahe is not None else picked
    zero, one = torch.zeros(images.shape[1], device=device), torch.ones(images.shape[1], device=device)
    pixels = preprocess(picked, zero, one, preprocessing.resize)
    return Subset(pixels=pixels, labels=labels[order].to(device), indices=order)


def _normalised(subset: Subset, run: Run) -> Tensor:
    device = subset.pixels.device
    mean = torch.tensor(run.mean, device=device).view(1, -1, 1, 1)
    std = torch.tensor(run.std, device=device).view(1, -1, 1, 1)
    return (subset.pixels - mean) / std


_OUT_HINT = "pass another --out folder"


def _save_npz(path: Path, **arrays) -> Path:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:  # a handle: np.savez would add ".npz" to a name
        np.savez(handle, **{key: np.asarray(value) for key, value in arrays.items()})
    return path


def _device(device: str | None) -> torch.device:
    return torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))


def landscape_of_run(
    run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *, dims: int = 2, points: int = 21,
    extent: float = 1.0, images: int = 1000, split: str = "test", seed: int = 0, device: str | None = None,
    batch_size: int = 500,
) -> dict[str, Path]:
    """Slice a run's loss around its weights along `dims` filter-normalised random directions.

    Coordinates run from -extent to extent in `points` steps; returns the written files by role.
    """
    if dims not in (1, 2):
        raise CifarlabError(f"--dims {dims}: a slice has 1 or 2 directions")
    if points < 2 or extent <= 0:
        raise CifarlabError(f"--points {points} --range {extent}: use at least 2 points and a positive range")
    _check_batch_size(batch_size)
    run = load_run(run_dir)
    place = _device(device)
    out = Path(out) if out is not None else run.dir / "landscape"
    model = run.model.to(place)
    subset = evaluation_subset(run, images, split, seed, place)
    generator = torch.Generator().manual_seed(seed)
    directions = [random_direction(model, generator) for _ in range(dims)]
    coordinates = torch.linspace(-extent, extent, points)
    with allocator_setting(run.recipe.train.allocator):  # points x points evaluations of the subset
        loss, accuracy = slice_surface(model, directions, coordinates, _normalised(subset, run), subset.labels,
                                       batch_size)
    name = f"{run.recipe.model.name} ({run.dir.name}), {len(subset.labels)} {split} images"
    x = coordinates.numpy()
    with output_folder(out, hint=_OUT_HINT):  # made here: removed again if a file fails, so no partial results
        written = {"npz": _save_npz(out / NPZ, coordinates=coordinates.numpy(), loss=loss.numpy(),
                                    accuracy=accuracy.numpy(), dims=dims, seed=seed, split=split,
                                    indices=subset.indices.numpy(), run=str(run.dir))}
        if dims == 1:
            written["curve"] = plot_curve(x, loss.numpy(), accuracy.numpy(), out / CURVE,
                                          "step along a filter-normalised direction", f"loss slice of {name}")
        else:
            written["contour"] = plot_contour(x, loss.numpy(), out / CONTOUR, f"loss contours of {name}")
            written["surface"] = plot_surface(x, loss.numpy(), out / SURFACE, f"loss surface of {name}")
    return written


def interpolate_runs(
    run_a: str | os.PathLike, run_b: str | os.PathLike, out: str | os.PathLike | None = None, *, points: int = 21,
    margin: float = 0.5, images: int = 1000, split: str = "test", seed: int = 0, device: str | None = None,
    batch_size: int = 500,
) -> dict[str, Path]:
    """Loss and accuracy along the line from run A's weights (alpha 0) to run B's (alpha 1).

    alpha runs from -margin to 1 + margin in `points` steps, with 0 and 1 always among them;
    the evaluation images come from run A's data. Returns the written files by role.
    """
    if points < 2 or margin < 0:
        raise CifarlabError(f"--points {points}: use at least 2 points (and a margin of 0 or more)")
    _check_batch_size(batch_size)
    first, second = load_run(run_a), load_run(run_b)
    if first.classes != second.classes:
        raise CifarlabError(f"{first.dir} and {second.dir} predict different classes; interpolate between two runs "
                            "on the same data")
    place = _device(device)
    out = Path(out) if out is not None else first.dir / f"interpolation-{second.dir.name}"
    model = first.model.to(place)
    # Copies: loading a mixture into `model` writes into the tensors its own state_dict returned.
    ends = [Endpoint({name: value.detach().clone() for name, value in run.model.state_dict().items()},
                     run.mean, run.std) for run in (first, second)]
    subset = evaluation_subset(first, images, split, seed, place)
    # Exactly 0 and 1 among the points, so that each end is its run's own model.
    line = torch.linspace(-margin, 1 + margin, points, dtype=torch.float64).round(decimals=12)
    alphas = torch.cat([line, torch.tensor([0.0, 1.0], dtype=torch.float64)]).unique()
    with allocator_setting(first.recipe.train.allocator):
        loss, accuracy = interpolate(model, ends[0], ends[1], alphas, subset.pixels, subset.labels, batch_size)
    title = (f"{first.dir.name} (alpha 0) to {second.dir.name} (alpha 1), "
             f"{len(subset.labels)} {split} images")
    with output_folder(out, hint=_OUT_HINT):  # made here: removed again if a file fails, so no partial results
        written = {"npz": _save_npz(out / INTERPOLATION_NPZ, alpha=alphas.numpy(), loss=loss.numpy(),
                                    accuracy=accuracy.numpy(), seed=seed, split=split,
                                    indices=subset.indices.numpy(), run_a=str(first.dir), run_b=str(second.dir))}
        written["plot"] = plot_curve(alphas.numpy(), loss.numpy(), accuracy.numpy(), out / INTERPOLATION_PLOT,
                                     "alpha: (1 - alpha) A + alpha B", title,
                                     marks=[(0.0, first.dir.name), (1.0, second.dir.name)])
    return written
