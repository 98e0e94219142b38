"""Data-dependent first-layer initialisation: patch whitening and identity (dirac) convs.

A conv whose filters are the eigenvectors of the training images' patch covariance,
each divided by sqrt(eigenvalue + eps), maps patches to decorrelated unit-variance
features; frozen, it gives the next layers well-conditioned inputs from the first step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch
from torch import nn

from cifarlab.errors import CifarlabError

# Images per chunk when accumulating the patch covariance: bounds memory on 50k images.
_CHUNK = 500


def _as_float_images(images: torch.Tensor) -> torch.Tensor:
    if images.ndim != 4:
        raise CifarlabError(
            f"whitening needs a batch of images (N, C, H, W), got shape {tuple(images.shape)}; "
            "pass the training images as one tensor."
        )
    if images.dtype == torch.uint8:
        # uint8 images are taken as pixels; float images are used as the model will see them.
        return images.float() / 255
    return images.float()


def patch_moments(images: torch.Tensor, kernel_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) in float64 of every kernel_size x kernel_size patch.

    D = channels * k * k, ordered like a conv weight's (C, kh, kw) flattening.
    """
    n, c = images.shape[:2]
    dim = c * kernel_size * kernel_size
    total = torch.zeros(dim, dtype=torch.float64, device=images.device)
    outer = torch.zeros(dim, dim, dtype=torch.float64, device=images.device)
    count = 0
    for start in range(0, n, _CHUNK):
        chunk = _as_float_images(images[start : start + _CHUNK])
        # unfold gives (N, C*k*k, L) with the same (C, kh, kw) order as conv weights.
        cols = nn.functional.unfold(chunk, kernel_size).transpose(1, 2).reshape(-1, dim).double()
        total += cols.sum(0)
        outer += cols.T @ cols
        count += cols.shape[0]
    mean = total / count
    cov = outer / count - torch.outer(mean, mean)
    return mean, cov


@torch.no_grad()
def patch_whitening_init(conv: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4) -> torch.Tensor:
    """Set `conv` to whiten the patches of `images`, freeze its weights; return the eigenvalues.

    `images`: (N, C, H, W) training images in the form the model receives them (float),
    or uint8 pixels (scaled to [0, 1]). The conv needs C*k*k outputs (one filter per
    eigenvector, largest first) or 2*C*k*k (those filters, then their negatives, so a
    following GELU/ReLU keeps both signs). Patches are centred and the bias set to
    -W @ mean, so the outputs on the training patches have mean zero and covariance
    diag(lambda / (lambda + eps)), i.e. about identity. The bias stays trainable (airbench
    trains it for a few epochs); call `conv.bias.requires_grad_(False)` to freeze it too.
    """
    k = conv.kernel_size[0]
    dim = conv.in_channels * k * k
    if conv.kernel_size[0] != conv.kernel_size[1] or conv.groups != 1 or conv.stride != (1, 1):
        raise CifarlabError("patch whitening needs a square, stride-1, ungrouped conv; build the layer that way.")
    if images.shape[1] != conv.in_channels:
        raise CifarlabError(
            f"whitening images have {images.shape[1]} channels but the conv takes {conv.in_channels}; "
            "pass images shaped (N, C, H, W) with the model's channels."
        )
    if conv.out_channels not in (dim, 2 * dim):
        raise CifarlabError(
            f"a {k}x{k} whitening conv over {conv.in_channels} channels needs {dim} or {2 * dim} outputs, "
            f"got {conv.out_channels}; change the layer's width."
        )
    mean, cov = patch_moments(images, k)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)  # largest first
    filters = eigenvectors.T / torch.sqrt(eigenvalues.clamp_min(0) + eps)[:, None]
    if conv.out_channels == 2 * dim:
        filters = torch.cat([filters, -filters])
    conv.weight.copy_(filters.reshape(conv.weight.shape).to(conv.weight.dtype))
    conv.weight.requires_grad_(False)
    if conv.bias is not None:
        conv.bias.copy_((-filters @ mean).to(conv.bias.dtype))
    return eigenvalues.float()


@torch.no_grad()
def identity_init(model: nn.Module) -> int:
    """Make each odd-kernel conv pass its inputs through on its first in_channels outputs.

    airbench does this for every 3x3 conv: output channel i < in_channels becomes a
    centred dirac on input channel i (outputs beyond in_channels keep their default
    random init; biases are zeroed). A residual-like path without residual wiring.
    Returns how many convs were changed.
    """
    changed = 0
    for module in model.modules():
        if not isinstance(module, nn.Conv2d) or module.groups != 1:
            continue
        if any(size % 2 == 0 for size in module.kernel_size):
            continue  # even kernels (the whitening layer) have no centre tap
        weight = module.weight
        nn.init.dirac_(weight[: weight.shape[1]])
        if module.bias is not None:
            module.bias.zero_()
        changed += 1
    return changed


def init_airbench(model: nn.Module, images: torch.Tensor, eps: float = 5e-4) -> torch.Tensor:
    """airbench's initialisation: identity 3x3 convs, then whiten and freeze `model.whiten`."""
    whiten = getattr(model, "whiten", None)
    if not isinstance(whiten, nn.Conv2d):
        raise CifarlabError(
            f"{type(model).__name__} has no `whiten` conv; init_airbench is for the airbench family "
            "(use patch_whitening_init on your own first layer), or set model.init=default to keep the model's "
            "own initialisation."
        )
    identity_init(model)
    return patch_whitening_init(whiten, images, eps=eps)


def airbench_init_from_data(model: nn.Module, train_images: torch.Tensor, mean: tuple[float, ...],
                            std: tuple[float, ...], seed: int,
                            equalise: Optional[Callable[[torch.Tensor], torch.Tensor]] = None, sample: int = 5000) -> None:
    """`model.init: airbench`: identity 3x3 convs and a frozen whitening layer fitted to `sample`
    training images (uint8), prepared as the model will see them: `equalise` first when the run
    equalises its images (`cifarlab.data.equalise.Clahe`), then normalised."""
    generator = torch.Generator().manual_seed(seed)
    pick = torch.randperm(len(train_images), generator=generator)[:sample]
    picked = train_images[pick]
    images = (equalise(picked) if equalise is not None else picked).float().div_(255)
    mean_t = torch.tensor(mean).view(1, -1, 1, 1)
    std_t = torch.tensor(std).view(1, -1, 1, 1)
    init_airbench(model, (images - mean_t) / std_t)
