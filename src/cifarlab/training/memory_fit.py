"""What a run needs of the device's memory, checked before it starts.

`check_fits` refuses a batch larger than the training set or one whose training step cannot fit
in the device's free memory, and says what fits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Optional

import torch
from torch import nn

from cifarlab.config.recipe import Recipe
from cifarlab.errors import CifarlabError

# The activations a step keeps for backward, their gradients and the workspace of the backward
# pass together are about three times the forward outputs; weights count four times (weights,
# gradients, two optimiser moments).
BACKWARD_FACTOR = 3
WEIGHT_COPIES = 4
USABLE_SHARE = 0.9  # leave room for the allocator, the data pipeline and everything else


def check_fits(recipe: Recipe, num_train_images: int, model: nn.Module, input_size: Sequence[int] | int,
               extra_bytes: int = 0) -> None:
    """Refuse a batch larger than the training set, or one whose training step exceeds free memory.

    `input_size` is (channels, height, width) or one side of a square RGB image, as the model sees it
    after resizing and cropping; `extra_bytes` is whatever else lives on the device (the dataset).
    """
    batch = recipe.train.batch_size
    # A k-shot set smaller than the batch is drawn with replacement (BiT: batch 512 on 10 images).
    if batch > num_train_images and not recipe.data.examples_per_class:
        fits = _round_down(num_train_images, recipe.train.accumulate)
        raise CifarlabError(
            f"train.batch_size={batch} is larger than the {num_train_images} training images; "
            f"use train.batch_size={fits} (at most {num_train_images})"
        )
    check_progressive_size(recipe, model, input_size)
    device = training_device(recipe.train.device)
    available = available_bytes(device)
    if available is None:
        return
    per_image = _bytes_per_image_or_refuse(recipe, model, input_size)
    fixed = WEIGHT_COPIES * sum(p.numel() * p.element_size() for p in model.parameters()) + extra_bytes
    need = fixed + BACKWARD_FACTOR * per_image * (batch // recipe.train.accumulate)
    if need > USABLE_SHARE * available:
        _refuse_batch(recipe, device, available, fixed, need, per_image)


def _bytes_per_image_or_refuse(recipe: Recipe, model: nn.Module, input_size: Sequence[int] | int) -> int:
    """Activation bytes per image; images the network cannot take are one error saying what to change."""
    try:
        return activation_bytes_per_image(model, input_size)
    except RuntimeError as exc:  # torch's shape errors: the images are too small (or shaped wrong) for the network
        reason = str(exc).splitlines()[0]
        if isinstance(input_size, int):
            shown = f"{input_size}x{input_size}"
        else:
            shown = f"{input_size[0]}-channel {input_size[-2]}x{input_size[-1]}"
        # torch names a channel mismatch "expected input ... to have 3 channels": resizing cannot fix that.
        fix = ("give images with the channels the model takes (e.g. a grey image repeated to 3 channels) or a "
               "model built for them" if "channels" in reason else
               "raise augment.resize / augment.crop or choose a model built for that size")
        raise CifarlabError(f"model {recipe.model.name} cannot take {shown} images ({reason[:160]}); {fix}") from exc


def _refuse_batch(recipe: Recipe, device: torch.device, available: int, fixed: int, need: int, per_image: int) -> None:
    """The batch does not fit: say which batch, or which accumulation of this batch, would."""
    batch = recipe.train.batch_size
    budget = USABLE_SHARE * available
    fitting_micro = int((budget - fixed) // (BACKWARD_FACTOR * per_image)) if budget > fixed else 0
    if fitting_micro < 1:
        raise CifarlabError(
            f"the model alone needs about {_gib(fixed)} on {device} but only {_gib(available)} is free; "
            "use a smaller model, free memory, or train on a device with more memory"
        )
    fits = _round_down(fitting_micro * recipe.train.accumulate, recipe.train.accumulate)
    accumulate = math.ceil(batch / fitting_micro)
    while batch % accumulate:  # micro-batches must be equal
        accumulate += 1
    raise CifarlabError(
        f"train.batch_size={batch} needs about {_gib(need)} on {device} for one training step but only "
        f"{_gib(available)} is free; use train.batch_size={fits} or less, or keep the batch and split it "
        f"with train.accumulate={accumulate}"
    )


def check_progressive_size(recipe: Recipe, model: nn.Module, input_size: Sequence[int] | int) -> None:
    """Progressive resizing's early batches must be smaller than the training images and fit the network."""
    progressive = recipe.augment.progressive_size
    if progressive is None:
        return
    channels = 3 if isinstance(input_size, int) else input_size[0]
    full = input_size if isinstance(input_size, int) else input_size[-1]
    if progressive >= full:
        raise CifarlabError(
            f"augment.progressive_size={progressive} is not smaller than the {full}x{full} training images; "
            f"use a smaller side, e.g. augment.progressive_size={max(8, full * 3 // 4)}")
    try:
        activation_bytes_per_image(model, (channels, progressive, progressive))
    except RuntimeError as exc:  # torch's shape errors: a head sized for the full images
        raise CifarlabError(
            f"model {recipe.model.name} cannot take the {progressive}x{progressive} images of progressive resizing "
            f"({str(exc).splitlines()[0][:160]}); raise augment.progressive_size or turn it off "
            "(augment.progressive_size=null augment.progressive_epochs=0)") from exc


def activation_bytes_per_image(model: nn.Module, input_size: Sequence[int] | int) -> int:
    """Bytes of every layer's output for one image, counted in a forward pass of two images.

    The pass runs without gradients in eval mode, so the model is left exactly as it was (no
    running-statistics update); the layers' outputs have the same sizes as in training.
    """
    shape = (3, input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    total = [0]

    def count(module, inputs, output) -> None:
        for tensor in _tensors(output):
            total[0] += tensor.numel() * tensor.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((2, *shape), device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return max(1, total[0] // 2)


def _tensors(output) -> Iterator[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        yield output
    elif isinstance(output, (list, tuple)):
        for item in output:
            yield from _tensors(item)
    elif isinstance(output, dict):
        for item in output.values():
            yield from _tensors(item)


def training_device(name: str) -> torch.device:
    """The device `train.device` means here (`auto`: the GPU if there is one)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def available_bytes(device: torch.device) -> Optional[int]:
    """Free memory of `device` in bytes; None when it cannot be told (then nothing is refused)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        return _meminfo_available()
    return None


def _meminfo_available() -> Optional[int]:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil  # optional: other systems than Linux

        return int(psutil.virtual_memory().available)
    except ImportError:
        return None


def _round_down(n: int, multiple: int) -> int:
    """The largest power of two <= n that is a multiple of `multiple` (else the largest multiple)."""
    power = 1 << (max(n, 1).bit_length() - 1)
    if power % multiple == 0 and power >= multiple:
        return power
    return max(multiple, n // multiple * multiple)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"
