"""Heavy augmentation, batched and per image: named ops with probabilities, RandAugment, TrivialAugment, AugMix.

`augment.ops` in a recipe lists ops such as `{name: rotate, p: 0.5, degrees: 15}` (see `spec.OPS` for
every op, its parameters and ranges); `augment.policy` adds a whole policy. The batch pipeline calls
`build_heavy(augment)` once and the result on every batch with the batch's seeded generator.
"""

from cifarlab.config.augment_ops import (
           OP_HELP,
           OPS,
           POLICIES,
           OpSetting,
           check_augment,
           check_ops,
)
from cifarlab.data.augment.augmix import augmix_js, jensen_shannon
from cifarlab.data.augment.heavy import HeavyAugment, build_heavy
from cifarlab.data.augment.ops import apply_op

__all__ = ["HeavyAugment", "build_heavy", "apply_op", "augmix_js", "jensen_shannon", "OPS", "OP_HELP",
           "POLICIES", "OpSetting", "check_ops", "check_augment"]
