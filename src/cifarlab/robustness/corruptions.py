"""`corrupt(images, name, severity, seed)`: the CIFAR-10-C corruptions by name, on uint8 batches.

`BENCHMARK` lists the 15 corruptions of CIFAR-10-C / CIFAR-100-C in the published order,
`EXTRA` the 4 held-out ones the benchmark also releases; `CORRUPTIONS` is both, in that
order (the order of the `distortionNN` ids of submission files).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import Optional

import torch
from torch import Tensor

from cifarlab.errors import CifarlabError
from cifarlab.robustness import blur, digital, noise, weather

Corruption = Callable[[Tensor, int, torch.Generator], Tensor]

_FUNCTIONS: dict[str, Corruption] = {
    "gaussian_noise": noise.gaussian_noise,
    "shot_noise": noise.shot_noise,
    "impulse_noise": noise.impulse_noise,
    "defocus_blur": blur.defocus_blur,
    "glass_blur": blur.glass_blur,
    "motion_blur": blur.motion_blur,
    "zoom_blur": blur.zoom_blur,
    "snow": weather.snow,
    "frost": weather.frost,
    "fog": weather.fog,
    "brightness": digital.brightness,
    "contrast": digital.contrast,
    "elastic_transform": digital.elastic_transform,
    "pixelate": digital.pixelate,
    "jpeg_compression": digital.jpeg_compression,
    "speckle_noise": noise.speckle_noise,
    "gaussian_blur": blur.gaussian_blur,
    "spatter": weather.spatter,
    "saturate": digital.saturate,
}
CORRUPTIONS: tuple[str, ...] = tuple(_FUNCTIONS)
BENCHMARK: tuple[str, ...] = CORRUPTIONS[:15]
EXTRA: tuple[str, ...] = CORRUPTIONS[15:]
SEVERITIES: tuple[int, ...] = (1, 2, 3, 4, 5)
# Corruptions that draw nothing at random: the seed does not change them.
DETERMINISTIC: frozenset[str] = frozenset(
    {"defocus_blur", "zoom_blur", "gaussian_blur", "brightness", "contrast", "saturate", "pixelate", "jpeg_compression"}
)
# The CIFAR constants are set for this side; other sizes would need other constants.
SIDE = 32
# Images corrupted at once: bounds memory (spatter's distance transform grows as side^3 per image).
BLOCK = 1000


def check_corruption(name: str) -> str:
    """`name` if it is a corruption, else a CifarlabError listing them."""
    if name not in _FUNCTIONS:
        raise CifarlabError(f"unknown corruption {name!r}; use one of: {', '.join(CORRUPTIONS)}")
    return name


def check_severity(severity: int) -> int:
    """`severity` if it is 1-5, else a CifarlabError."""
    if severity not in SEVERITIES:
        raise CifarlabError(f"severity {severity!r} is not one of 1, 2, 3, 4, 5; pick one of those")
    return int(severity)


def corruption_generator(name: str, severity: int, seed: int) -> torch.Generator:
    """The random stream of one corruption at one severity: fixed by the seed, independent across both."""
    digest = hashlib.sha256(f"{seed}/{name}/{severity}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))


def corrupt(images: Tensor, name: str, severity: int, seed: int = 0,
            frost_photos: Optional[Sequence[Tensor]] = None) -> Tensor:
    """Corrupt uint8 images (N, 3, 32, 32) with corruption `name` at `severity` 1-5; uint8 out.

    Frost crops the generated textures unless `frost_photos` (`textures.frost_photos(folder)`,
    the published photographs) are given.

    The same images, name, severity and seed give the same result. Blocks of `BLOCK` images
    are corrupted in turn from one random stream, so a slice of the output equals the output
    of the slice only for the corruptions in `DETERMINISTIC`. Values are clipped to [0, 1]
    and truncated to 8 bits as the published generation code does. The work is done on the
    CPU; the result goes back to the images' device.
    """
    check_corruption(name)
    check_severity(severity)
    if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
        raise CifarlabError(f"corrupt needs a uint8 tensor (N, 3, {SIDE}, {SIDE}), got {got}; pass raw RGB images")
    if tuple(images.shape[-2:]) != (SIDE, SIDE):
        raise CifarlabError(f"corrupt works on {SIDE}x{SIDE} images (its constants are CIFAR's), got "
                            f"{images.shape[-2]}x{images.shape[-1]}; resize the images to {SIDE}x{SIDE} first")
    if images.shape[0] == 0:
        return images.clone()
    generator = corruption_generator(name, severity, seed)
    function = _FUNCTIONS[name]
    if name == "frost" and frost_photos is not None:
        function = functools.partial(weather.frost, photos=frost_photos)
    device = images.device
    images = images.cpu()  # the CPU generator's draws, and the Pillow ones, live there
    blocks = []
    for start in range(0, images.shape[0], BLOCK):
        result = function(images[start : start + BLOCK].float() / 255, severity, generator)
        # A small lift keeps values that are exact multiples of 1/255 on their own level.
        blocks.append(torch.floor(result.clamp(0, 1) * 255 + 1e-3).to(torch.uint8))
    return torch.cat(blocks).to(device)
