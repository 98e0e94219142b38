"""Checks on recipe values that a type and a min/max cannot express, run when a recipe loads.

The loader already refuses wrong types and values outside a field's `min`/`max`. What is left
is here: values that must be strictly positive, lists that must be increasing, settings that
must agree with each other, and the device, which must exist on this machine. Each failure is
one CifarlabError naming the key, the value and a value that works, before anything is created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch

from cifarlab.config.augment_ops import augment_problem
from cifarlab.config.fields import show
from cifarlab.config.recipe import Recipe
from cifarlab.errors import CifarlabError

Where = Callable[[str], str]  # dotted key -> "set on the command line" / "set in FILE" / ""

_SEED_LIMIT = 2**32  # numpy's seed range; torch and Python accept these too
_DEVICE_TYPES = ("cpu", "cuda", "mps")
_NAME_BYTES = 255  # the longest file or folder name common file systems (ext4, APFS, NTFS) allow
_SUFFIX_BYTES = 8  # room for the "-2", "-3" ... a taken run folder name gets
_LARGEST_SIDE = 1024  # resize and crop sides; larger images belong to another kind of project


def validate_recipe(recipe: Recipe, where: Optional[Where] = None, check_machine: bool = True) -> None:
    """Refuse a recipe whose values cannot make a sensible run; `check_machine` also checks the device exists here."""
    where = where or (lambda key: "")
    checks = [_learning_rates, _length, _batch, _lists, _sizes, _export, _names, _seeds, _device_string, _heavy_augment,
              _whiten_bias, _flip, _precision]
    if check_machine:
        checks.append(_device_present)
    for check in checks:
        problem = check(recipe)
        if problem is not None:
            key, message = problem
            origin = where(key)
            raise CifarlabError(f"{message}{f' ({origin})' if origin else ''}")


Problem = Optional[tuple[str, str]]  # (dotted key, message naming the problem and the fix)


def _learning_rates(recipe: Recipe) -> Problem:
    lr = recipe.optim.lr
    if lr != "find" and not lr > 0:
        return "optim.lr", (f"optim.lr must be > 0 (or `find` for the LR range test), got {lr:g}; "
                            "set e.g. optim.lr=0.1 or optim.lr=find")
    if not recipe.fewshot.base_lr > 0:
        return "fewshot.base_lr", (f"fewshot.base_lr must be > 0, got {recipe.fewshot.base_lr:g}; "
                                   "set e.g. fewshot.base_lr=0.003 (BiT-HyperRule)")
    start = recipe.schedule.warmup_start_lr
    if lr != "find" and start > lr:
        return "schedule.warmup_start_lr", (f"schedule.warmup_start_lr={start:g} is above optim.lr={lr:g}, but the "
                                            "warmup rises from it to the lr; give a smaller start (e.g. 1e-5) or 0")
    return None


def _length(recipe: Recipe) -> Problem:
    train = recipe.train
    if train.steps is None and not train.epochs > 0:
        return "train.epochs", (f"train.epochs={train.epochs:g} trains nothing; give train.epochs > 0 "
                                "(fractions allowed, e.g. 0.5) or train.steps=N optimiser steps")
    return None


def _batch(recipe: Recipe) -> Problem:
    train = recipe.train
    if train.batch_size % train.accumulate:
        fits = max(train.accumulate, train.batch_size // train.accumulate * train.accumulate)
        return "train.accumulate", (
            f"train.batch_size={train.batch_size} does not split into train.accumulate={train.accumulate} "
            f"equal micro-batches; use a multiple of {train.accumulate}, e.g. train.batch_size={fits}")
    if train.grad_clip is not None and not train.grad_clip > 0:
        return "train.grad_clip", ("train.grad_clip=0 would zero every gradient; give a positive "
                                   "threshold (e.g. 1.0) or null for no clipping")
    return None


def _lists(recipe: Recipe) -> Problem:
    betas = recipe.optim.betas
    if len(betas) != 2 or not all(0.0 <= beta < 1.0 for beta in betas):
        return "optim.betas", (f"optim.betas must be two numbers in [0, 1), got {show(betas)}; "
                               "e.g. optim.betas=[0.9,0.999]")
    for key, values in (("schedule.milestones", recipe.schedule.milestones),
                        ("schedule.boundaries", recipe.schedule.boundaries),
                        ("fewshot.boundaries", recipe.fewshot.boundaries)):
        if values is not None and not _increasing(values):
            return key, (f"{key} must be increasing step or epoch numbers >= 0, got {show(values)}; "
                         "sort them and drop repeats")
    if recipe.schedule.boundaries is not None and len(recipe.schedule.boundaries) < 2:
        return "schedule.boundaries", ("schedule.boundaries needs at least the warmup end and the last "
                                       f"step, got {show(recipe.schedule.boundaries)}; e.g. [500, 3000, 6000, 9000, 10000]")
    if any(shots < 1 for shots in recipe.fewshot.shots):
        return "fewshot.shots", (f"fewshot.shots must be examples per class >= 1, got {show(recipe.fewshot.shots)}; "
                                 "e.g. fewshot.shots=[1,5]")
    return None


def _increasing(values: list[int]) -> bool:
    return all(value >= 0 for value in values) and all(a < b for a, b in zip(values, values[1:]))


def _sizes(recipe: Recipe) -> Problem:
    augment = recipe.augment
    for key, side in (("augment.resize", augment.resize), ("augment.crop", augment.crop),
                      ("fewshot.precrop", recipe.fewshot.precrop), ("fewshot.crop", recipe.fewshot.crop)):
        if side is not None and side > _LARGEST_SIDE:
            return key, (f"{key}={side} pixels is beyond what cifarlab trains at (at most {_LARGEST_SIDE}); "
                         "BiT-HyperRule uses 160/128 for small images and 512/480 for larger ones")
    if augment.crop is not None and augment.resize is not None and augment.crop > augment.resize:
        return "augment.crop", (f"augment.crop={augment.crop} is larger than the resized image "
                                f"(augment.resize={augment.resize}); use a crop <= {augment.resize}")
    progressive = _progressive(recipe)
    if progressive is not None:
        return progressive
    fewshot = recipe.fewshot
    if fewshot.crop is not None and fewshot.precrop is not None and fewshot.crop > fewshot.precrop:
        return "fewshot.crop", (f"fewshot.crop={fewshot.crop} is larger than fewshot.precrop={fewshot.precrop}; "
                                f"use a crop <= {fewshot.precrop}")
    return None


def _progressive(recipe: Recipe) -> Problem:
    augment = recipe.augment
    if (augment.progressive_size is None) != (augment.progressive_epochs == 0):
        return "augment.progressive_size", (
            "progressive resizing needs both augment.progressive_size and augment.progressive_epochs "
            f"(got size {augment.progressive_size}, epochs {augment.progressive_epochs}); "
            "e.g. augment.progressive_size=24 augment.progressive_epochs=4, or leave both unset")
    # Whether the side is below the training images' is checked once their size is known (training.memory_fit.check_fits).
    if recipe.train.steps is None and augment.progressive_epochs >= recipe.train.epochs:
        return "augment.progressive_epochs", (
            f"augment.progressive_epochs={augment.progressive_epochs} leaves no epoch at full size "
            f"(train.epochs={recipe.train.epochs:g}); use fewer, e.g. "
            f"augment.progressive_epochs={max(1, int(recipe.train.epochs) // 2)}")
    return None


def _whiten_bias(recipe: Recipe) -> Problem:
    if recipe.model.whiten_bias_epochs is not None and recipe.model.init != "airbench":
        return "model.whiten_bias_epochs", (
            f"model.whiten_bias_epochs freezes the bias of airbench's whitening layer, which model.init="
            f"{recipe.model.init} does not make; add model.init=airbench (airbench models) or remove the setting")
    return None


def _flip(recipe: Recipe) -> Problem:
    augment = recipe.augment
    if augment.flip_p != 0.5 and augment.flip != "random":
        return "augment.flip_p", (f"augment.flip_p={augment.flip_p:g} is the probability of a random flip, but "
                                  f"augment.flip={augment.flip}; add augment.flip=random or remove augment.flip_p")
    return None


def _precision(recipe: Recipe) -> Problem:
    """fp16 needs a CUDA GPU: refused here when the recipe names another device, at the run's start for `auto`."""
    name = recipe.train.device
    if recipe.train.precision != "fp16" or name == "auto":
        return None
    if torch.device(name).type != "cuda":
        return "train.precision", fp16_refusal(name)
    return None


def fp16_refusal(device: str) -> str:
    """The one message for fp16 on a device without fp16 units and a loss scaler (the CPU, MPS)."""
    return (f"train.precision=fp16 needs a CUDA GPU (fp16 units and a loss scaler), but the run trains on {device}; "
            "use train.precision=bf16 there (fp32's exponent range, so no loss scaling; where the CPU lacks bf16 "
            "units it is emulated, and train.precision=auto picks fp32) or train.precision=fp32")


def _export(recipe: Recipe) -> Problem:
    """The official .npz layout is BiT's: refuse any other network before training, not after it."""
    if recipe.train.export_npz and not recipe.model.name.startswith("bit_"):
        return "train.export_npz", (f"train.export_npz=true writes BiT ResNet-V2 weights only, but model.name="
                                    f"{show(recipe.model.name)}; train a bit_* model, or use `cifarlab export` "
                                    "(.safetensors) for other networks")
    return None


def _names(recipe: Recipe) -> Problem:
    """The run name becomes one folder: it must be a plain, non-empty file name."""
    name = recipe.name
    if not name.strip() or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        return "name", (f"name={show(name)} cannot be a run folder name; use letters, digits, '-' and '_' "
                        "(e.g. name=resnet18-baseline); put folders in out_dir instead")
    for key, text in (("out_dir", recipe.out_dir), ("data.root", recipe.data.root),
                      ("data.dataset", recipe.data.dataset), ("model.weights", recipe.model.weights)):
        if text is not None and "\0" in text:
            return key, f"{key} holds a NUL character, which no path may contain; retype it"
    if not recipe.out_dir.strip():
        return "out_dir", "out_dir is empty; give the folder run folders are made in, e.g. out_dir=runs"
    # File systems refuse longer names (ENAMETOOLONG); the run folder may still get a -2, -3 ... suffix.
    if len(name.encode("utf-8", "surrogateescape")) > _NAME_BYTES - _SUFFIX_BYTES:
        return "name", (f"name is {len(name.encode('utf-8', 'surrogateescape'))} bytes long; a run folder name "
                        f"may have at most {_NAME_BYTES - _SUFFIX_BYTES}: use a shorter name")
    for key, text in (("out_dir", recipe.out_dir), ("data.root", recipe.data.root)):
        too_long = [part for part in (text or "").split("/") if len(part.encode("utf-8", "surrogateescape")) > _NAME_BYTES]
        if too_long:
            return key, (f"{key} has a folder name of {len(too_long[0].encode('utf-8', 'surrogateescape'))} bytes "
                         f"({too_long[0][:20]}...); file systems allow at most {_NAME_BYTES}: shorten it")
    return None


def _heavy_augment(recipe: Recipe) -> Problem:
    return augment_problem(recipe.augment, recipe.train.loss)


def _seeds(recipe: Recipe) -> Problem:
    for key, seed in (("seed", recipe.seed), ("data.subset_seed", recipe.data.subset_seed)):
        if seed is not None and not 0 <= seed < _SEED_LIMIT:
            return key, f"{key} must be between 0 and {_SEED_LIMIT - 1}, got {show(seed)}; e.g. {key}=0"
    return None


def _device_string(recipe: Recipe) -> Problem:
    name = recipe.train.device
    if name == "auto":
        return None
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        device = None
    if device is None or device.type not in _DEVICE_TYPES:
        return "train.device", (f"train.device={show(name)} is not a device cifarlab trains on; use auto, cpu, "
                                "cuda, cuda:N or mps")
    return None


def _device_present(recipe: Recipe) -> Problem:
    name = recipe.train.device
    if name == "auto":
        return None
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return "train.device", (f"train.device={name} but this machine has no CUDA GPU that torch can use; "
                                    "use train.device=cpu, or train.device=auto to take a GPU when there is one")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            return "train.device", (f"train.device={name} but this machine has {count} GPU"
                                    f"{'s' if count != 1 else ''} (cuda:0 to cuda:{count - 1}); pick one of them")
    if device.type == "mps" and not torch.backends.mps.is_available():
        return "train.device", (f"train.device={name} but Apple's MPS backend is not available here; "
                                "use train.device=cpu, or train.device=auto")
    return None
