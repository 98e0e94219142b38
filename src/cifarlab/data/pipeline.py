"""The batch pipeline: a whole split as one uint8 tensor on the training device, augmented a batch at a time.

Every augmentation is a batched tensor op; no Pillow, no per-image Python and no DataLoader workers.
Randomness comes from CPU generators seeded by (seed, epoch, batch), so a batch is a pure function of
those three numbers: the same on every machine and device, and a run resumed at any step sees exactly
the batches it would have seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator, NamedTuple, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cifarlab.config.recipe import AugmentConfig


class Batch(NamedTuple):
    inputs: torch.Tensor  # float, normalised, (B, 3, H, W)
    targets: torch.Tensor  # int64 labels (B,), or soft targets (B, C) summing to one
    labels: torch.Tensor  # int64 labels (B,) of the dominant image, for accuracy


def _generator(*keys: int) -> torch.Generator:
    # Mix the keys into one 63-bit seed; NumPy's SeedSequence gives well-spread, platform-independent seeds.
    seed = int(np.random.SeedSequence([k & 0xFFFFFFFF for k in keys]).generate_state(2, np.uint64)[0])
    return torch.Generator().manual_seed(seed & ((1 << 63) - 1))


def random_crop(x: torch.Tensor, size: int, padding: int, pad_mode: str, g: torch.Generator) -> torch.Tensor:
    """Crop a `size` square at a random offset per image from the batch padded by `padding` pixels."""
    if padding > 0:
        x = F.pad(x, (padding,) * 4, mode="reflect" if pad_mode == "reflect" else "constant")
    b, c, h, w = x.shape
    dy = torch.randint(0, h - size + 1, (b,), generator=g).to(x.device)
    dx = torch.randint(0, w - size + 1, (b,), generator=g).to(x.device)
    ar = torch.arange(size, device=x.device)
    rows = (dy[:, None] + ar)[:, None, :, None].expand(b, c, size, w)
    x = x.gather(2, rows)
    cols = (dx[:, None] + ar)[:, None, None, :].expand(b, c, size, size)
    return x.gather(3, cols)


def flip_mask(batch: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(batch, generator=g) < 0.5


def apply_flip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror the images where `mask` is true (an exact horizontal mirror)."""
    return torch.where(mask.to(x.device)[:, None, None, None], x.flip(3), x)


def cutout(x: torch.Tensor, size: int, fill: float, g: torch.Generator) -> torch.Tensor:
    """Fill one `size` square per image with `fill`; its centre is uniform over the image, clipped at the edges."""
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b,), generator=g).to(x.device)
    cx = torch.randint(0, w, (b,), generator=g).to(x.device)
    y0, x0 = cy - size // 2, cx - size // 2
    ys = torch.arange(h, device=x.device)[None, :]
    xs = torch.arange(w, device=x.device)[None, :]
    in_rows = (ys >= y0[:, None]) & (ys < y0[:, None] + size)
    in_cols = (xs >= x0[:, None]) & (xs < x0[:, None] + size)
    hole = (in_rows[:, :, None] & in_cols[:, None, :])[:, None]
    return x.masked_fill(hole, fill)


def one_hot(labels: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    off = smoothing / num_classes
    return F.one_hot(labels, num_classes).float() * (1.0 - smoothing) + off


def mix_batch(x, labels, num_classes, aug: AugmentConfig, smoothing: float, rng: np.random.Generator):
    """MixUp or CutMix with the batch reversed as partner; returns inputs and soft targets."""
    targets = one_hot(labels, num_classes, smoothing)
    if rng.random() >= aug.mix_prob:
        return x, targets
    use_cutmix = aug.cutmix_alpha > 0 and (aug.mixup_alpha <= 0 or rng.random() < aug.switch_prob)
    alpha = aug.cutmix_alpha if use_cutmix else aug.mixup_alpha
    lam = float(rng.beta(alpha, alpha))
    if use_cutmix:
        h, w = x.shape[-2:]
        cut = math.sqrt(1.0 - lam)
        ch, cw = int(h * cut), int(w * cut)
        cy, cx = int(rng.integers(h)), int(rng.integers(w))
        y0, y1 = max(cy - ch // 2, 0), min(cy + ch - ch // 2, h)
        x0, x1 = max(cx - cw // 2, 0), min(cx + cw - cw // 2, w)
        x = x.clone()
        x[..., y0:y1, x0:x1] = x.flip(0)[..., y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / (h * w)  # the area actually pasted
    else:
        x = x * lam + x.flip(0) * (1.0 - lam)
    return x, targets * lam + targets.flip(0) * (1.0 - lam)


@dataclass
class BatchPipeline:
    """Batches of one split, held as a uint8 tensor on the training device.

    `epoch(e, start=i)` yields the batches of epoch `e` from batch `i` on. When the split is smaller
    than one batch, batches are drawn with replacement. Under DistributedDataParallel each rank takes
    its slice of every global batch, so the ranks together see exactly the single-process batches.
    """

    images: torch.Tensor  # uint8 (N, 3, H, W), already on the training device
    labels: torch.Tensor  # int64 (N,)
    batch_size: int
    num_classes: int
    mean: Sequence[float]
    std: Sequence[float]
    augment: Optional[AugmentConfig] = None
    label_smoothing: float = 0.0
    seed: int = 0
    shuffle: bool = True
    drop_last: bool = True
    channels_last: bool = False
    rank: int = 0
    world_size: int = 1

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError("BatchPipeline expects uint8 images shaped (N, 3, H, W)")
        self.labels = self.labels.to(self.images.device)
        dev = self.images.device
        self._mean = torch.tensor(self.mean, device=dev, dtype=torch.float32).view(1, -1, 1, 1)
        self._std = torch.tensor(self.std, device=dev, dtype=torch.float32).view(1, -1, 1, 1)
        self.replacement = self.shuffle and len(self.images) < self.batch_size
        if self.batch_size % self.world_size:
            raise ValueError(f"batch size {self.batch_size} is not divisible by {self.world_size} processes")
        aug = self.augment
        self.soft_targets = aug is not None and (aug.mixup_alpha > 0 or aug.cutmix_alpha > 0)
        # Alternating flip: a fixed random choice per image, inverted on every odd epoch.
        self._base_flip = flip_mask(len(self.images), _generator(self.seed, 0xF11B))

    def __len__(self) -> int:
        n = len(self.images)
        if self.replacement:
            return 1
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def order(self, epoch: int) -> torch.Tensor:
        """The example order of one epoch (a permutation, or identity without shuffling)."""
        n = len(self.images)
        if not self.shuffle:
            return torch.arange(n)
        return torch.randperm(n, generator=_generator(self.seed, epoch, 0x0DE7))

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        order = None if self.replacement else self.order(epoch)
        for i in range(start, len(self)):
            g = _generator(self.seed, epoch, i)
            if self.replacement:
                idx = torch.randint(0, len(self.images), (self.batch_size,), generator=g)
            else:
                idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            yield self.make_batch(idx, epoch, g, np.random.default_rng(g.initial_seed()))

    def make_batch(self, idx, epoch, g, rng) -> Batch:
        dev = self.images.device
        x = self.images[idx.to(dev)].float().div_(255.0)
        labels = self.labels[idx.to(dev)]
        aug = self.augment
        if aug is not None:
            x = self._geometric(x, idx, epoch, aug, g)
        x = (x - self._mean) / self._std
        if self.soft_targets:
            x, targets = mix_batch(x, labels, self.num_classes, aug, self.label_smoothing, rng)
        else:
            targets = labels
        # Each rank keeps its slice of the global batch: the randomness above is shared by all ranks.
        if self.world_size > 1:
            per = len(x) // self.world_size
            part = slice(self.rank * per, (self.rank + 1) * per)
            x, targets, labels = x[part], targets[part], labels[part]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return Batch(x, targets, labels)

    def _geometric(self, x, idx, epoch, aug: AugmentConfig, g) -> torch.Tensor:
        if aug.resize is not None and aug.resize != x.shape[-1]:
            x = F.interpolate(x, size=(aug.resize, aug.resize), mode="bilinear", align_corners=False)
        size = aug.crop if aug.crop is not None else x.shape[-1]
        if aug.crop_padding > 0 or size != x.shape[-1]:
            x = random_crop(x, size, aug.crop_padding, aug.pad_mode, g)
        if aug.flip == "random":
            x = apply_flip(x, flip_mask(len(x), g))
        elif aug.flip == "alternating":
            x = apply_flip(x, self._base_flip[idx] ^ bool(epoch % 2))
        if aug.cutout > 0:
            x = cutout(x, aug.cutout, aug.cutout_fill, g)
        return x
