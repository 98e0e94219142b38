"""The Python API a notebook uses: train a recipe, read a run back, evaluate a model.

    import cifarlab
    run = cifarlab.train("quick", overrides={"train.epochs": 1})
    run.test["top1"], run.history[-1]["val_top1"]
    cifarlab.evaluate(run, split="test", tta="flip")
    same = cifarlab.load_run(run.dir)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Optional, Union

import torch
from torch import nn

from cifarlab.config import load_recipe, recipe_from_dict, recipe_to_dict
from cifarlab.config.loader import with_overrides
from cifarlab.config.recipe import Recipe
from cifarlab.data.sources import Dataset, load_dataset
from cifarlab.errors import CifarlabError
from cifarlab.runs import Run, load_run
from cifarlab.training.allocator import allocator_setting
from cifarlab.training.callbacks import Callback

RecipeLike = Union[str, os.PathLike, Mapping[str, Any], Recipe]
DataLike = Union[str, Dataset, Sequence[torch.Tensor], None]


def _check_overrides(overrides: object) -> None:
    if overrides is not None and not isinstance(overrides, Mapping):
        raise TypeError("overrides must map dotted keys to values, e.g. {'train.epochs': 1, 'optim.lr': 0.05}; "
                        f"got {type(overrides).__name__}")


def recipe_of(recipe: RecipeLike, overrides: Optional[Mapping[str, Any]] = None) -> Recipe:
    """A shipped recipe name ("quick"), a YAML path, a mapping or a Recipe, with dotted-key overrides.

    Overrides go through the loader's own `key=value` merge, so a mapping and a file take them the same
    way the command line does (JSON values are YAML values).
    """
    if not isinstance(recipe, (str, os.PathLike, Mapping, Recipe)):
        raise TypeError(f"recipe must be a shipped name, a YAML path, a mapping or a Recipe; got {type(recipe).__name__}")
    _check_overrides(overrides)
    words = [f"{key}={json.dumps(value)}" for key, value in (overrides or {}).items()]
    if isinstance(recipe, Recipe):
        recipe = recipe_to_dict(recipe)
    if isinstance(recipe, Mapping):
        return recipe_from_dict(with_overrides(dict(recipe), words), source="the recipe mapping")
    return load_recipe(recipe, words)


def _as_dataset(data: Sequence[torch.Tensor]) -> Dataset:
    """(images, labels) or (train_images, train_labels, test_images, test_labels) uint8/int64 tensors."""
    if len(data) not in (2, 4):
        raise CifarlabError("data as tensors is (images, labels) or (train_images, train_labels, test_images, "
                            f"test_labels); got {len(data)} items")
    tensors = [torch.as_tensor(t) for t in data]
    _check_images_and_labels(tensors[0], tensors[1], "training")
    if len(tensors) == 4:
        _check_images_and_labels(tensors[2], tensors[3], "test")
        if tensors[2].shape[1:] != tensors[0].shape[1:]:
            raise CifarlabError(f"test images are {tuple(tensors[2].shape[1:])} but training images "
                                f"{tuple(tensors[0].shape[1:])}; give both sets at one size")
    else:  # no test set given: an empty one, and the run skips its test evaluation
        tensors += [tensors[0][:0], tensors[1][:0]]
    labels = tensors[1].long()
    test_top = int(tensors[3].max()) if len(tensors[3]) else 0
    num_classes = max(int(labels.max()), test_top) + 1
    return Dataset(name="tensors", classes=[str(c) for c in range(num_classes)], train_images=tensors[0],
                   train_labels=labels, test_images=tensors[2], test_labels=tensors[3].long())


def _check_images_and_labels(images: torch.Tensor, labels: torch.Tensor, which: str) -> None:
    """One message for what the training would otherwise fail on later, or silently get wrong."""
    if images.dtype != torch.uint8 or images.ndim != 4:
        raise CifarlabError(f"{which} images must be uint8 N x C x H x W (pixels 0-255); got {images.dtype} "
                            f"{tuple(images.shape)}: convert with (x * 255).round().to(torch.uint8)")
    if labels.ndim != 1 or labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
        raise CifarlabError(f"{which} labels must be a 1-D tensor of integer class indices; got {labels.dtype} "
                            f"{tuple(labels.shape)} (one-hot labels: labels.argmax(1))")
    if len(labels) != len(images):
        raise CifarlabError(f"{len(images)} {which} images but {len(labels)} labels; give one label per image")
    if which == "training" and not len(images):
        raise CifarlabError("no training images: the training tensors are empty")
    if len(labels) and int(labels.min()) < 0:
        raise CifarlabError(f"{which} labels must be class indices 0, 1, ...; found {int(labels.min())}")


def train(recipe: RecipeLike, *, model: Optional[nn.Module] = None, data: DataLike = None,
          out_dir: Optional[Union[str, os.PathLike]] = None, overrides: Optional[Mapping[str, Any]] = None,
          callbacks: Iterable[Callback] = ()) -> Run:
    """Train a recipe and return its Run (`.dir`, `.model` with the best weights, `.history`, `.test`).

    `model` trains that module instead of the recipe's; `data` is a dataset name ("cifar100",
    "folder:PATH"), a Dataset, or uint8 image and label tensors; `overrides` are dotted keys
    ({"optim.lr": 0.05}); `callbacks` watch or stop the run (`cifarlab.training.callbacks.Callback`).
    """
    from cifarlab.runner.run import run_recipe

    if model is not None and not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch nn.Module to train; got {type(model).__name__} (a zoo model is "
                        "chosen by name with overrides={'model.name': NAME})")
    _check_overrides(overrides)
    overrides = dict(overrides or {})
    if out_dir is not None:
        overrides["out_dir"] = str(out_dir)
    dataset = None
    if isinstance(data, str):
        overrides["data.dataset"] = data
    elif isinstance(data, Dataset):
        dataset = data
    elif data is not None:
        dataset = _as_dataset(data)
    if model is not None:
        overrides["model.name"] = f"{type(model).__module__}.{type(model).__qualname__}"
    resolved = recipe_of(recipe, overrides)
    if dataset is not None and not len(dataset.test_images):
        resolved = replace(resolved, eval=replace(resolved.eval, test=False))
    result = run_recipe(resolved, model=model, dataset=dataset, callbacks=callbacks)
    run = load_run(result.run_dir)
    if result.model is not None:
        run._model = result.model.eval()
    return run


def evaluate(run_or_model: Union[Run, str, os.PathLike, nn.Module], data: Optional[str] = None, split: str = "test",
             tta: Optional[str] = None, *, mean: Optional[Sequence[float]] = None,
             std: Optional[Sequence[float]] = None, batch_size: Optional[int] = None) -> dict:
    """Score a run (or a run folder, or a model) on a split: returns top1, top5, loss, ece and more.

    A run is scored as its final evaluation was (its own dataset, TTA, geometry, CLAHE and precision;
    "val" means its own validation images), so `evaluate(load_run(path))` gives `run.test` again;
    `tta` overrides its TTA. A bare model is scored on `data` (default cifar10) with `tta` (default
    none), normalised with `mean`/`std` (default: its input config, else the training images'
    statistics) after the CLAHE its input config records, if any. `batch_size` (images per forward
    pass) defaults to the run's `eval.batch_size`, or 500 for a bare model; it changes memory and speed,
    not the scores (beyond bf16 rounding). Nothing is written. A run is scored with its
    `train.allocator` setting, a bare model with `auto` (see `cifarlab.training.allocator`); the free
    heap is handed back afterwards.
    """
    from cifarlab.evaluation import score_split

    if split not in ("val", "test"):
        raise CifarlabError(f"split must be 'val' or 'test', got {split!r}")
    if isinstance(run_or_model, (str, os.PathLike)):
        run_or_model = load_run(run_or_model)
    if isinstance(run_or_model, Run):
        scoring = _run_scoring(run_or_model, data, split, tta, mean, std, batch_size)
        allocator = run_or_model.recipe.train.allocator
    elif isinstance(run_or_model, nn.Module):
        scoring = _model_scoring(run_or_model, data, split, tta, mean, std, batch_size)
        allocator = "auto"
    else:
        raise TypeError(f"evaluate() takes a Run, a run folder or an nn.Module; got {type(run_or_model).__name__}")
    with allocator_setting(allocator):
        return dict(score_split(*scoring).summary)


def _run_scoring(run: Run, data: Optional[str], split: str, tta: Optional[str], mean: Optional[Sequence[float]],
                 std: Optional[Sequence[float]], batch_size: Optional[int]) -> tuple:
    """score_split's arguments for a run: its model, the images its `split` means, its classes and settings."""
    from cifarlab.data.prepare import split_images
    from cifarlab.evaluation import run_settings

    recipe = run.recipe if data is None else replace(run.recipe, data=replace(run.recipe.data, dataset=data))
    _, images, labels = split_images(recipe.data, recipe.seed, split, f"run {run.dir}")
    settings = run_settings(run.model, recipe, mean or run.mean, std or run.std, split=split, tta=tta, batch_size=batch_size)
    return run.model, images, labels, run.classes, settings


def _model_scoring(model: nn.Module, data: Optional[str], split: str, tta: Optional[str], mean: Optional[Sequence[float]],
                   std: Optional[Sequence[float]], batch_size: Optional[int]) -> tuple:
    """score_split's arguments for a bare model: the test split of `data` and the model's own settings."""
    from cifarlab.data.stats import channel_stats
    from cifarlab.evaluation import model_settings
    from cifarlab.evaluation.settings import model_normalisation

    if split == "val":
        raise CifarlabError("a bare model has no validation split; pass its Run, or use split='test'")
    dataset = load_dataset(data or "cifar10")
    if mean is None or std is None:
        stats = model_normalisation(model) or channel_stats(dataset.train_images)
        mean = mean or tuple(float(value) for value in stats[0])
        std = std or tuple(float(value) for value in stats[1])
    settings = model_settings(model, mean, std, tta=tta, batch_size=batch_size)
    return model, dataset.test_images, dataset.test_labels, dataset.classes, settings


__all__ = ["Run", "evaluate", "load_run", "recipe_of", "train"]
