"""Class probabilities for a uint8 image tensor: preprocess in batches, optional TTA, softmax."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.settings import EvalSettings
from cifarlab.evaluation.tta import tta_softmax
from cifarlab.progress import track


def _check_images(images: Tensor, mean: Sequence[float], std: Sequence[float]) -> None:
    if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.ndim != 4:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
        raise CifarlabError(f"predict needs a uint8 tensor (N, C, H, W), got {got}; pass the raw uint8 images")
    if images.shape[0] == 0:
        raise CifarlabError("predict got no images (N=0); pass at least one image")
    channels = images.shape[1]
    if len(mean) != channels or len(std) != channels:
        raise CifarlabError(
            f"mean/std have {len(mean)}/{len(std)} values for {channels}-channel images; give one per channel"
        )
    if any(s <= 0 for s in std):
        raise CifarlabError(f"std {list(std)} has a value <= 0; give positive per-channel stds in [0,1] units")


def _model_device(model: nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return torch.device("cpu")


@contextlib.contextmanager
def eval_mode(model: nn.Module):
    """Put every submodule in eval mode and give each back its own mode afterwards.

    Restoring per submodule (not `model.train(previous)`) keeps deliberate mixes, such as a
    frozen BatchNorm left in eval mode inside a training model.
    """
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def predict(model: nn.Module, images: Tensor, settings: EvalSettings) -> Tensor:
    """Class probabilities (N, num_classes), float32 on the CPU, for uint8 images (N, C, H, W).

    Each batch of `settings.batch_size` images goes through `settings.preprocessing` (CLAHE when the
    run trained with it, [0,1], resize and centre crop, mean/std), then through `model` under
    `torch.inference_mode` in eval mode with the test-time augmentation `settings.tta` (see
    `cifarlab.evaluation.tta`), on `settings.device` (default: the model's), in the memory format and
    autocast precision the settings name. The model's training mode is restored afterwards.
    """
    preprocessing = settings.preprocessing
    _check_images(images, preprocessing.mean, preprocessing.std)
    device = torch.device(settings.device) if settings.device is not None else _model_device(model)
    dtype = settings.autocast_dtype
    autocast = torch.autocast(device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext()
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format
    outputs = []
    with eval_mode(model), torch.inference_mode():
        starts = range(0, images.shape[0], settings.batch_size)
        for start in track(starts, f"predicting {images.shape[0]} images (tta {settings.tta})", stream=sys.stderr):
            batch = images[start : start + settings.batch_size].to(device, non_blocking=True)
            x = preprocessing(batch).contiguous(memory_format=memory_format)
            with autocast:
                probs = tta_softmax(x, model, settings.tta)
            outputs.append(probs.float().cpu())
    return torch.cat(outputs)
