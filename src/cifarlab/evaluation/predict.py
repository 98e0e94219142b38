"""Class probabilities for a uint8 image tensor: preprocess in batches, optional TTA, softmax."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cifarlab.errors import CifarlabError
from cifarlab.evaluation.tta import check_tta_mode, tta_softmax
from cifarlab.progress import track

Size = int | Sequence[int] | None


def _pair(size: Size, what: str) -> tuple[int, int] | None:
    if size is None:
        return None
    pair = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
    if len(pair) != 2 or min(pair) < 1:
        raise CifarlabError(f"{what}={size!r} is not a size; give one positive int or (height, width)")
    return pair


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


def centre_crop(x: Tensor, size: tuple[int, int]) -> Tensor:
    """The central `size` = (height, width) window of a batch."""
    h, w = x.shape[-2:]
    ch, cw = size
    if ch > h or cw > w:
        raise CifarlabError(f"crop {ch}x{cw} is larger than the {h}x{w} images; crop to at most the image size")
    top, left = (h - ch) // 2, (w - cw) // 2
    return x[..., top : top + ch, left : left + cw]


def preprocess(
    batch: Tensor,
    mean: Tensor,
    std: Tensor,
    resize: tuple[int, int] | None = None,
    crop: tuple[int, int] | None = None,
) -> Tensor:
    """uint8 batch -> float in [0,1] -> optional resize and centre crop -> per-channel normalised."""
    x = batch.float().div_(255.0)
    if resize is not None:
        x = F.interpolate(x, size=resize, mode="bilinear", align_corners=False, antialias=False)
    if crop is not None:
        x = centre_crop(x, crop)
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


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


def predict(
    model: nn.Module,
    images: Tensor,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    batch_size: int = 500,
    tta: str = "none",
    device: str | torch.device | None = None,
    resize: Size = None,
    crop: Size = None,
    channels_last: bool = False,
    autocast_dtype: torch.dtype | None = None,
) -> Tensor:
    """Class probabilities (N, num_classes), float32 on the CPU, for uint8 images (N, C, H, W).

    Each batch is scaled to [0,1], resized with bilinear interpolation to `resize` and centre-
    cropped to `crop` when given (BiT-style evaluation), normalised with `mean`/`std` (in [0,1]
    units), then passed through `model` under `torch.inference_mode` in eval mode with the
    test-time augmentation `tta` (see `cifarlab.evaluation.tta`). `device` defaults to the
    model's; `autocast_dtype` (e.g. torch.bfloat16) turns on autocast for the forward pass.
    The model's training mode is restored afterwards.
    """
    check_tta_mode(tta)
    _check_images(images, mean, std)
    if batch_size < 1:
        raise CifarlabError(f"batch_size={batch_size} must be at least 1")
    resize_hw, crop_hw = _pair(resize, "resize"), _pair(crop, "crop")
    device = torch.device(device) if device is not None else _model_device(model)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device)
    std_t = torch.tensor(std, dtype=torch.float32, device=device)
    autocast = (
        torch.autocast(device.type, dtype=autocast_dtype) if autocast_dtype is not None else contextlib.nullcontext()
    )
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    outputs = []
    with eval_mode(model), torch.inference_mode():
        starts = range(0, images.shape[0], batch_size)
        for start in track(starts, f"predicting {images.shape[0]} images (tta {tta})", stream=sys.stderr):
            batch = images[start : start + batch_size].to(device, non_blocking=True)
            x = preprocess(batch, mean_t, std_t, resize_hw, crop_hw).contiguous(memory_format=memory_format)
            with autocast:
                probs = tta_softmax(x, model, tta)
            outputs.append(probs.float().cpu())
    return torch.cat(outputs)
