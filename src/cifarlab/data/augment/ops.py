"""The recipe's named ops (`augment.ops`), each applied with its own probability and per-image strength.

`apply_op` draws which images the op touches (probability `p`, per image), then that op's random
parameters for those images, all from the batch's generator: a seed gives the same batch on every
run and device, and a resumed run needs no extra state.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from cifarlab.config.augment_ops import OpSetting
from cifarlab.data.augment import colour, geometry
from cifarlab.data.augment.clahe import clahe
from cifarlab.data.augment.erasing import random_erasing
from cifarlab.data.augment.geometry import uniform
from cifarlab.data.augment.jpeg import jpeg
from cifarlab.data.augment.noise import gaussian_noise

OpFn = Callable[[torch.Tensor, dict, torch.Generator], torch.Tensor]


def _spread(n: int, amount: float, g: torch.Generator) -> torch.Tensor:
    return uniform(n, 1.0 - amount, 1.0 + amount, g)


def _color_jitter(x: torch.Tensor, params: dict, g: torch.Generator) -> torch.Tensor:
    n = len(x)
    x = colour.brightness(x, _spread(n, params["brightness"], g))
    x = colour.contrast(x, _spread(n, params["contrast"], g))
    x = colour.saturation(x, _spread(n, params["saturation"], g))
    return colour.hue(x, uniform(n, -params["hue"], params["hue"], g))


def _quality(n: int, span: tuple[int, int], g: torch.Generator) -> torch.Tensor:
    return torch.randint(span[0], span[1] + 1, (n,), generator=g)


OP_FUNCTIONS: dict[str, OpFn] = {
    "random_resized_crop": lambda x, params, g: geometry.random_resized_crop(x, params["scale"], params["ratio"], g),
    "rotate": lambda x, params, g: geometry.random_rotate(x, params["degrees"], g),
    "brightness": lambda x, params, g: colour.brightness(x, _spread(len(x), params["amount"], g)),
    "contrast": lambda x, params, g: colour.contrast(x, _spread(len(x), params["amount"], g)),
    "saturation": lambda x, params, g: colour.saturation(x, _spread(len(x), params["amount"], g)),
    "hue": lambda x, params, g: colour.hue(x, uniform(len(x), -params["amount"], params["amount"], g)),
    "color_jitter": _color_jitter,
    "gaussian_noise": lambda x, params, g: gaussian_noise(x, uniform(len(x), *params["std"], g), g),
    "jpeg": lambda x, params, g: jpeg(x, _quality(len(x), params["quality"], g)),
    "clahe": lambda x, params, g: clahe(x, uniform(len(x), *params["clip_limit"], g), params["grid"]),
    "random_erasing": lambda x, params, g: random_erasing(x, params["area"], params["ratio"], params["fill"], g),
}


def apply_op(x: torch.Tensor, op: OpSetting, g: torch.Generator) -> torch.Tensor:
    """Apply `op` to a random share `op.p` of the images of float (N, 3, H, W) `x` in [0, 1]."""
    chosen = torch.rand(len(x), generator=g) < op.p
    if not chosen.any():
        return x
    if chosen.all():
        return OP_FUNCTIONS[op.name](x, op.params, g)
    chosen = chosen.to(x.device)
    out = x.clone()
    out[chosen] = OP_FUNCTIONS[op.name](x[chosen], op.params, g)
    return out
