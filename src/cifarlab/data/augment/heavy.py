"""The heavy augmentation of a recipe: its policy, then its ops in the listed order, on a whole batch.

Runs after the pipeline's crop and flip, on float images in [0, 1], before normalisation. All
randomness comes from the batch's generator, so batches stay a pure function of (seed, epoch, batch).
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from cifarlab.config.augment_ops import OpSetting, check_augment, check_ops
from cifarlab.data.augment.augmix import VIEWS, augmix
from cifarlab.data.augment.ops import apply_op
from cifarlab.data.augment.policies import rand_augment, trivial_augment


class HeavyAugment:
    """Callable `(images, generator) -> images` built from an AugmentConfig's heavy settings."""

    def __init__(self, augment: Any):
        check_augment(augment)
        self.augment = augment
        self.ops: list[OpSetting] = check_ops(augment.ops)
        self.policy: str = augment.policy
        # With the Jensen-Shannon loss each image leaves as three rows: clean, AugMix view, AugMix view.
        self.views = VIEWS if augment.policy == "augmix" and augment.augmix_js else 1

    def __call__(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """Augment uint8 or float (N, 3, H, W) images; float in [0, 1] out, N x self.views rows."""
        if x.dtype == torch.uint8:
            x = x.float().div_(255.0)
        if self.views > 1:
            clean = x
            first, second = self.apply_policy(x, g), self.apply_policy(x, g)
            x = torch.stack([clean, first, second], 1).flatten(0, 1)
        else:
            x = self.apply_policy(x, g)
        for op in self.ops:
            x = apply_op(x, op, g)
        return x

    def apply_policy(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        """One view of each image under the recipe's policy (the images themselves for `none`)."""
        augment = self.augment
        if self.policy == "randaugment":
            return rand_augment(x, augment.randaugment_ops, augment.randaugment_magnitude, g)
        if self.policy == "trivialaugment":
            return trivial_augment(x, g)
        if self.policy == "augmix":
            return augmix(x, augment.augmix_width, augment.augmix_depth, augment.augmix_severity,
                          augment.augmix_alpha, g)
        return x


def build_heavy(augment: Optional[Any]) -> Optional[HeavyAugment]:
    """The heavy augmentation of `augment`, or None when it has no ops and no policy (nothing to do)."""
    if augment is None or (not augment.ops and augment.policy == "none"):
        return None
    return HeavyAugment(augment)
