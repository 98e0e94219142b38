"""augment.flip_p: the share of images a random flip mirrors (DL4DS's "hflip probability"), on both batch paths."""

from __future__ import annotations

import pytest
import torch

from cifarlab.config.recipe import AugmentConfig
from cifarlab.data.pipeline import BatchPipeline, flip_mask


def _images(n: int = 400, size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8), torch.arange(n) % 4


def _mirrored_share(aug: AugmentConfig) -> float:
    """Share of a batch that comes out mirrored (no crop, so every image is itself or its mirror)."""
    images, labels = _images()
    pipe = BatchPipeline(images, labels, batch_size=len(images), num_classes=4, mean=(0, 0, 0), std=(1, 1, 1),
                         augment=aug, shuffle=False)
    out = (next(pipe.epoch(0)).inputs * 255).round().to(torch.uint8)
    plain = torch.tensor([torch.equal(o, i) for o, i in zip(out, images)])
    mirror = torch.tensor([torch.equal(o, i.flip(-1)) for o, i in zip(out, images)])
    assert bool((plain | mirror).all())  # every image is itself or its mirror
    return float((mirror & ~plain).float().mean())


@pytest.mark.parametrize("path", ["uint8 crop and flip", "float resize path"])
@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_flip_p_is_the_share_of_images_mirrored(path, p):
    resize = {"resize": 8, "crop": 8} if path == "float resize path" else {}
    aug = AugmentConfig(crop_padding=0, flip="random", flip_p=p, **resize)
    assert _mirrored_share(aug) == pytest.approx(p, abs=0.07)  # 400 images: sd of the share <= 0.025


def test_the_default_flip_p_draws_the_same_flips_as_a_fair_coin_did():
    # 0.5 keeps every earlier batch: one uniform draw per image, compared with 0.5 as before the key existed.
    assert AugmentConfig().flip_p == 0.5
    g_old, g_new = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(torch.rand(1000, generator=g_old) < 0.5, flip_mask(1000, g_new))
