"""How a run's model is evaluated: normalisation, geometry, TTA, memory format and precision.

The final evaluation of a run, `cifarlab eval`, `cifarlab.evaluation` and every analysis that scores a
run use these, so they all give the same numbers for the same model.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn

from cifarlab.config.recipe import Recipe
from cifarlab.models import eval_geometry
from cifarlab.models.input_config import InputConfig
from cifarlab.training.step import resolve_precision


def model_normalisation(model: nn.Module) -> Optional[tuple]:
    """(mean, std) the model brings (pretrained weights); None when it uses the training data's own."""
    config = getattr(model, "input_config", None)
    return (config.mean, config.std) if config is not None and config.mean is not None else None


def evaluation_geometry(model: nn.Module, recipe: Recipe) -> dict:
    """`resize=side` (or nothing): evaluation sees the geometry the model was trained at."""
    return eval_geometry(getattr(model, "input_config", InputConfig()), recipe.augment)


def evaluation_options(model: nn.Module, recipe: Recipe, tta: Optional[str] = None) -> dict:
    """Keyword arguments of `score_split` / `evaluate_split` for a run's model: TTA (the recipe's unless
    given), batch size, geometry, channels_last and bf16 autocast where the run trained in bf16."""
    options = dict(tta=tta or recipe.eval.tta, batch_size=recipe.eval.batch_size,
                   channels_last=recipe.train.channels_last, **evaluation_geometry(model, recipe))
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    if resolve_precision(recipe.train.precision, device) == "bf16":
        options["autocast_dtype"] = torch.bfloat16
    return options
