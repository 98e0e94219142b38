"""BiT-HyperRule: the fine-tuning recipe BiT picks from the training-set size and image size alone.

Mirrors the published rule (bit_hyperrule.py of google-research/big_transfer):
- resolution: images with area below 96x96 are resized to 160 and cropped to 128,
  larger ones resized to 512 and cropped to 480;
- schedule: below 20k examples 500 steps, below 500k 10k steps, else 20k steps, with a
  linear warmup and three divisions of the learning rate by 10;
- MixUp alpha 0.1 from 20k examples on, none below;
- SGD, momentum 0.9, no weight decay, lr 0.003.

The published code uses base_lr 0.003 whatever the batch (bit_hyperrule.get_lr takes no batch size,
and bit_pytorch/train.py trains a batch of any size at that rate); the BiT PyTorch notebook, as
seeds/000 runs it, trains batch 32 at 0.003 and its log ends at 3e-06 = 0.003/1000. So
`lr_scaling="none"` is the default; `lr_scaling="linear"` scales base_lr by batch/512, the common
linear-scaling habit, for comparison.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from cifarlab.errors import CifarlabError

REFERENCE_BATCH = 512  # the batch the paper fine-tunes at; only `lr_scaling="linear"` refers to it
LR_SCALINGS = ("none", "linear")


@dataclass(frozen=True)
class HyperRule:
    """One resolved HyperRule; `boundaries` = (warmup end, decay 1, decay 2, decay 3, total steps)."""

    precrop: int
    crop: int
    boundaries: tuple[int, int, int, int, int]
    base_lr: float
    batch_size: int
    mixup_alpha: float
    momentum: float = 0.9
    weight_decay: float = 0.0
    lr_scaling: str = "none"

    def __post_init__(self):
        if self.lr_scaling not in LR_SCALINGS:
            raise CifarlabError(f"HyperRule lr_scaling must be one of {', '.join(LR_SCALINGS)}, got "
                                f"{self.lr_scaling!r}; use none (the published rule) or linear.")
        steps = tuple(int(b) for b in self.boundaries)
        if len(steps) != 5 or any(a > b for a, b in zip(steps, steps[1:])) or steps[0] < 0 or steps[-1] < 1:
            raise CifarlabError(f"HyperRule boundaries must be 5 non-decreasing step counts (warmup end, "
                                f"3 decays, total >= 1), got {self.boundaries}; fix the override.")
        object.__setattr__(self, "boundaries", steps)

    @property
    def lr(self) -> float:
        """Peak learning rate: `base_lr` itself, or scaled from batch 512 to `batch_size` when linear."""
        if self.lr_scaling == "linear":
            return self.base_lr * self.batch_size / REFERENCE_BATCH
        return self.base_lr

    @property
    def total_steps(self) -> int:
        return self.boundaries[-1]

    def lr_at(self, step: int) -> float | None:
        """Learning rate for optimiser step `step` (0-based); None once training is over."""
        warmup, *decays, total = self.boundaries
        if step < warmup:
            return self.lr * step / warmup
        if step >= total:
            return None
        # A decay takes effect on the step after its boundary (strict <), and repeated division
        # (not / 10**k) keeps the values bit-identical to the published rule.
        lr = self.lr
        for boundary in decays:
            if boundary < step:
                lr /= 10
        return lr

    def replace(self, **changes) -> HyperRule:
        """A copy with some values changed (e.g. `rule.replace(mixup_alpha=0.0)`)."""
        fields = {f.name for f in dataclasses.fields(self)}
        if unknown := sorted(set(changes) - fields):
            raise CifarlabError(f"unknown HyperRule value(s) {unknown}; choose from {sorted(fields)}.")
        return dataclasses.replace(self, **changes)


def resolution(image_size: int | tuple[int, int]) -> tuple[int, int]:
    """(precrop, crop) for images of `image_size` (side, or (height, width))."""
    height, width = image_size if isinstance(image_size, (tuple, list)) else (image_size, image_size)
    return (160, 128) if height * width < 96 * 96 else (512, 480)


def schedule(train_size: int) -> tuple[int, int, int, int, int]:
    """(warmup end, decay steps x3, total steps) for a training set of `train_size` examples."""
    if train_size < 20_000:
        return (100, 200, 300, 400, 500)
    if train_size < 500_000:
        return (500, 3000, 6000, 9000, 10_000)
    return (500, 6000, 12_000, 18_000, 20_000)


def mixup_alpha(train_size: int) -> float:
    """MixUp alpha: none for small sets, 0.1 from 20k examples."""
    return 0.0 if train_size < 20_000 else 0.1


def hyperrule(train_size: int, image_size: int | tuple[int, int], batch_size: int = 512,
              base_lr: float = 0.003, lr_scaling: str = "none", **overrides) -> HyperRule:
    """The BiT-HyperRule for a dataset; any field can be overridden by keyword (e.g. `boundaries=`).

    `lr_scaling`: "none" trains at `base_lr` at any `batch_size` (the published rule), "linear" at
    `base_lr * batch_size / 512`.
    """
    if train_size < 1:
        raise CifarlabError(f"train_size must be at least 1 example, got {train_size}; check the training set.")
    precrop, crop = resolution(image_size)
    rule = HyperRule(precrop=precrop, crop=crop, boundaries=schedule(train_size), base_lr=base_lr,
                     batch_size=batch_size, mixup_alpha=mixup_alpha(train_size), lr_scaling=lr_scaling)
    return rule.replace(**overrides) if overrides else rule
