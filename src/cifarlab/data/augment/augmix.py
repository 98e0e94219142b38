"""AugMix (Hendrycks et al. 2020): chains of ops mixed with Dirichlet weights, then with the image.

Per image: `width` chains of 1-3 ops (or `depth`), ops drawn from AugMix's list (no colour ops that
overlap the CIFAR-C corruptions), severity levels drawn in [0.1, severity]; the chains are mixed with
Dirichlet(alpha) weights and the mix with the image by Beta(alpha, alpha). With the Jensen-Shannon
consistency loss the pipeline returns each image three times in a row (clean, two AugMix views) and
`augmix_js` (a loss factory) computes cross-entropy on the clean view plus the consistency term.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from cifarlab.data.augment.geometry import random_sign, uniform
from cifarlab.data.augment.policies import apply_grouped
from cifarlab.errors import CifarlabError

AUGMIX_OPS = ["autocontrast", "equalize", "posterize", "rotate", "solarize",
              "shear_x", "shear_y", "translate_x", "translate_y"]
JS_WEIGHT = 12.0  # the consistency weight of the AugMix paper's CIFAR experiments
VIEWS = 3  # clean and two AugMix views of each image, in a row


def _values(choice: torch.Tensor, level: torch.Tensor, side: int, g: torch.Generator) -> torch.Tensor:
    """AugMix's value for each image's op at its level in [0.1, severity] (its code scales levels by /10)."""
    scaled = level / 10.0
    sign = random_sign(len(choice), g)
    zero = torch.zeros_like(scaled)
    shear = scaled * 0.3 * sign
    shift = (scaled * side / 3).floor() / side * sign
    by_op = {  # columns in AUGMIX_OPS order
        "autocontrast": zero, "equalize": zero, "posterize": 4 + (scaled * 4).floor(),
        "rotate": (scaled * 30).floor() * sign, "solarize": (scaled * 256).floor() / 256,
        "shear_x": shear, "shear_y": shear, "translate_x": shift, "translate_y": shift,
    }
    table = torch.stack([by_op[name] for name in AUGMIX_OPS], 1)
    return table.gather(1, choice[:, None]).squeeze(1)


def augmix(x: torch.Tensor, width: int, depth: Optional[int], severity: float, alpha: float,
           g: torch.Generator) -> torch.Tensor:
    """One AugMix view of each image of float (N, 3, H, W) `x` in [0, 1].

    The `width` chains of every image run as one batch of width x N images, so each op runs once
    per chain step for all chains (not once per chain): fewer, larger calls, which is what a
    2-core CPU needs at batch 128.
    """
    n = len(x)
    rng = np.random.default_rng(int(torch.randint(2**62, (1,), generator=g)))
    weights = torch.from_numpy(rng.dirichlet([alpha] * width, size=n)).float().to(x.device)
    keep = torch.from_numpy(rng.beta(alpha, alpha, size=n)).float().to(x.device).view(n, 1, 1, 1)
    chains = x.repeat(width, 1, 1, 1)  # chain c of image i is row c * n + i
    steps = torch.full((width * n,), depth) if depth else torch.randint(1, 4, (width * n,), generator=g)
    for step in range(int(steps.max())):
        choice = torch.randint(len(AUGMIX_OPS), (width * n,), generator=g)
        values = _values(choice, uniform(width * n, 0.1, severity, g), x.shape[-1], g)
        chains = apply_grouped(chains, choice, values, AUGMIX_OPS, active=steps > step, interpolation="bilinear")
    # Mix each image's chains with its own Dirichlet weights: (width, N) weights against (width, N, ...) views.
    mixed = (weights.T.reshape(width, n, 1, 1, 1) * chains.view(width, n, *x.shape[1:])).sum(0)
    return keep * x + (1.0 - keep) * mixed


def jensen_shannon(clean: torch.Tensor, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Mean Jensen-Shannon divergence of three views' predicted distributions (from logits)."""
    probs = [F.softmax(logits.float(), dim=1) for logits in (clean, first, second)]
    log_mixture = torch.clamp((probs[0] + probs[1] + probs[2]) / 3.0, 1e-7, 1.0).log()
    return sum(F.kl_div(log_mixture, p, reduction="batchmean") for p in probs) / 3.0


def augmix_js(label_smoothing: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Loss factory (the loss registry's shape): cross-entropy on clean views + JS_WEIGHT x consistency.

    Logits and targets hold each image three times in a row (clean, view, view), as the pipeline makes
    them with `augment.augmix_js=true`; any micro-batch of whole images keeps the rows together.
    """

    def loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if logits.shape[0] % VIEWS:
            raise CifarlabError("train.loss=augmix_js needs three views of every image; set augment.policy=augmix "
                                "augment.augmix_js=true")
        views = logits.view(-1, VIEWS, logits.shape[1])
        clean_targets = targets[::VIEWS]
        smoothing = label_smoothing if clean_targets.ndim == 1 else 0.0
        cross_entropy = F.cross_entropy(views[:, 0].float(), clean_targets, label_smoothing=smoothing)
        return cross_entropy + JS_WEIGHT * jensen_shannon(views[:, 0], views[:, 1], views[:, 2])

    return loss
