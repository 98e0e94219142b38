"""The batch pipeline: a whole split as one uint8 tensor on the training device, augmented a batch at a time.

Every augmentation is a batched tensor op; no Pillow, no per-image Python and no DataLoader workers.
Randomness comes from CPU generators seeded by (seed, epoch, batch), so a batch is a pure function of
those three numbers: the same on every machine and device, and a run resumed at any step sees exactly
the batches it would have seen.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Optional

import numpy as np
import torch
import torch.nn.functional as F

from cifarlab.config.recipe import AugmentConfig
from cifarlab.data.augment import build_heavy
from cifarlab.data.equalise import Clahe


class Batch(NamedTuple):
    inputs: torch.Tensor  # float, normalised, (B, 3, H, W)
    targets: torch.Tensor  # int64 labels (B,), or soft targets (B, C) summing to one
    labels: torch.Tensor  # int64 labels (B,) of the dominant image, for accuracy


def _generator(*keys: int) -> torch.Generator:
    # Mix the keys into one 63-bit seed; NumPy's SeedSequence gives well-spread, platform-independent seeds.
    seed = int(np.random.SeedSequence([k & 0xFFFFFFFF for k in keys]).generate_state(2, np.uint64)[0])
    return torch.Generator().manual_seed(seed & ((1 << 63) - 1))


def reflect_index(size: int, padding: int) -> torch.Tensor:
    """Source positions of a reflect-padded axis (as numpy/torch 'reflect': the edge is not repeated)."""
    pos = torch.arange(-padding, size + padding).abs()
    return torch.where(pos >= size, 2 * (size - 1) - pos, pos)


def pad_images(images: torch.Tensor, padding: int, pad_mode: str) -> torch.Tensor:
    """Pad a uint8 image tensor once, by indexing (reflect) or with zeros."""
    if padding == 0:
        return images
    if pad_mode == "reflect":
        h, w = images.shape[-2:]
        rows, cols = reflect_index(h, padding).to(images.device), reflect_index(w, padding).to(images.device)
        return images[:, :, rows][:, :, :, cols].contiguous()
    return F.pad(images, (padding,) * 4)


def crop_windows(images: torch.Tensor, padding: int, pad_mode: str, with_mirror: bool) -> torch.Tensor:
    """A view (S, C, 2p+1, 2p+1, H, W) of every crop window of the padded images.

    With `with_mirror`, the mirrored padded images follow the originals (S = 2N), so that crop and
    flip become one indexing op: window (dy, dx) of mirror n is window (dy, 2p - dx) of image n, mirrored.
    """
    h, w = images.shape[-2:]
    padded = pad_images(images, padding, pad_mode)
    if with_mirror:
        padded = torch.cat([padded, padded.flip(3)])
    return padded.unfold(2, h, 1).unfold(3, w, 1)


def crop_and_flip(windows: torch.Tensor, n: int, idx, dy, dx, flip) -> torch.Tensor:
    """Image `idx[b]`, window at (dy[b], dx[b]), mirrored where `flip[b]`: one gather on uint8."""
    span = windows.shape[3] - 1
    return windows[idx + n * flip.long(), :, dy, torch.where(flip, span - dx, dx)]


def random_crop(x: torch.Tensor, size: int, g: torch.Generator) -> torch.Tensor:
    """Crop a `size` square at a random offset per image (float path, after a resize)."""
    b, c, h, w = x.shape
    dy = torch.randint(0, h - size + 1, (b,), generator=g).to(x.device)
    dx = torch.randint(0, w - size + 1, (b,), generator=g).to(x.device)
    ar = torch.arange(size, device=x.device)
    x = x.gather(2, (dy[:, None] + ar)[:, None, :, None].expand(b, c, size, w))
    return x.gather(3, (dx[:, None] + ar)[:, None, None, :].expand(b, c, size, size))


def downscale(x: torch.Tensor, side: int) -> torch.Tensor:
    """Progressive resizing's smaller batches: antialiased bilinear, so no aliasing of fine texture.

    Applied to normalised images: its weights sum to one, so it commutes with the per-channel affine
    normalisation and gives the same pixels as resizing first.
    """
    return F.interpolate(x, size=(side, side), mode="bilinear", antialias=True, align_corners=False)


def flip_mask(batch: int, g: torch.Generator, p: float = 0.5) -> torch.Tensor:
    """Which of `batch` images to mirror, each with probability `p` (one uniform draw per image)."""
    return torch.rand(batch, generator=g) < p


def cutout_mask(shape, size: int, g: torch.Generator, device) -> torch.Tensor:
    """(B, 1, H, W) mask of one `size` square per image; its centre is uniform, clipped at the edges."""
    b, _, h, w = shape
    cy = torch.randint(0, h, (b,), generator=g).to(device)
    cx = torch.randint(0, w, (b,), generator=g).to(device)
    y0, x0 = cy - size // 2, cx - size // 2
    ys = torch.arange(h, device=device)[None, :]
    xs = torch.arange(w, device=device)[None, :]
    in_rows = (ys >= y0[:, None]) & (ys < y0[:, None] + size)
    in_cols = (xs >= x0[:, None]) & (xs < x0[:, None] + size)
    return (in_rows[:, :, None] & in_cols[:, None, :])[:, None]


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
    than one batch, or `with_replacement` is set, each batch is drawn with replacement (an epoch is
    then one batch). Under DistributedDataParallel each rank takes
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
    with_replacement: bool = False
    clahe: Optional[Clahe] = None  # the run's CLAHE normalisation (cifarlab.data.equalise), applied once to the split

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError("BatchPipeline expects uint8 images shaped (N, 3, H, W)")
        if self.clahe is not None:  # normalisation, not augmentation: the same fixed transform for every batch
            self.images = self.clahe(self.images)
        self.labels = self.labels.to(self.images.device)
        dev = self.images.device
        self._mean = torch.tensor(self.mean, device=dev, dtype=torch.float32).view(1, -1, 1, 1)
        self._std = torch.tensor(self.std, device=dev, dtype=torch.float32).view(1, -1, 1, 1)
        self._scale, self._shift = 1.0 / (255.0 * self._std), -self._mean / self._std
        aug = self.augment
        # Plain CIFAR geometry (pad, crop back to size, flip) runs on uint8 from a once-padded copy.
        self._fast = aug is not None and aug.resize is None and aug.crop in (None, self.images.shape[-1])
        if self._fast:
            self._windows = crop_windows(self.images, aug.crop_padding, aug.pad_mode, aug.flip != "none")
        if aug is not None:
            self._cutout_fill = (aug.cutout_fill - self._mean) / self._std
        self._heavy = build_heavy(aug)  # per-image ops and policies after crop and flip; None when off
        self.replacement = self.shuffle and (self.with_replacement or len(self.images) < self.batch_size)
        if self.batch_size % self.world_size:
            raise ValueError(f"batch size {self.batch_size} is not divisible by {self.world_size} processes")
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
        idx_dev = idx.to(dev)
        labels = self.labels[idx_dev]
        aug = self.augment
        if aug is None:
            x = self.images[idx_dev]
        elif self._fast:
            x = self._crop_flip(idx, idx_dev, epoch, aug, g)
        else:
            x = self._resize_crop_flip(idx, idx_dev, epoch, aug, g)
        if self._heavy is not None:
            x = self._heavy(x, g)  # float in [0, 1]; with the AugMix JS loss, 3 rows per image
            labels = labels.repeat_interleave(len(x) // len(labels))
        x = self._normalise(x)
        if aug is not None and aug.progressive_size is not None and epoch < aug.progressive_epochs:
            x = downscale(x, aug.progressive_size)
        if aug is not None and aug.cutout > 0:
            hole = cutout_mask(x.shape, aug.cutout, g, dev)
            x = torch.where(hole, self._cutout_fill, x)
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

    def _normalise(self, x: torch.Tensor) -> torch.Tensor:
        # (x / 255 - mean) / std as one multiply and one add, in place on the fresh float copy.
        if x.dtype == torch.uint8:
            return x.float().mul_(self._scale).add_(self._shift)
        return x.sub_(self._mean).div_(self._std)

    def _flips(self, idx, epoch, aug: AugmentConfig, g) -> torch.Tensor:
        if aug.flip == "random":
            return flip_mask(len(idx), g, aug.flip_p)
        if aug.flip == "alternating":
            return self._base_flip[idx] ^ bool(epoch % 2)
        return torch.zeros(len(idx), dtype=torch.bool)

    def _crop_flip(self, idx, idx_dev, epoch, aug: AugmentConfig, g) -> torch.Tensor:
        pad = aug.crop_padding
        dy = torch.randint(0, 2 * pad + 1, (len(idx),), generator=g)
        dx = torch.randint(0, 2 * pad + 1, (len(idx),), generator=g)
        flip = self._flips(idx, epoch, aug, g)
        dev = self.images.device
        return crop_and_flip(self._windows, len(self.images), idx_dev, dy.to(dev), dx.to(dev), flip.to(dev))

    def _resize_crop_flip(self, idx, idx_dev, epoch, aug: AugmentConfig, g) -> torch.Tensor:
        x = self.images[idx_dev].float().div_(255.0)
        if aug.resize is not None and aug.resize != x.shape[-1]:
            x = F.interpolate(x, size=(aug.resize, aug.resize), mode="bilinear", align_corners=False)
        if aug.crop_padding > 0:
            x = F.pad(x, (aug.crop_padding,) * 4, mode="reflect" if aug.pad_mode == "reflect" else "constant")
        size = aug.crop if aug.crop is not None else x.shape[-1] - 2 * aug.crop_padding
        if size != x.shape[-1]:
            x = random_crop(x, size, g)
        flip = self._flips(idx, epoch, aug, g).to(x.device)
        return torch.where(flip[:, None, None, None], x.flip(3), x)
