"""How a model is scored: one `EvalSettings` value, built in one place from a run's recipe.

The final evaluation of a run, `cifarlab eval`, `cifarlab predict`, `cifarlab robustness eval`,
`cifarlab.evaluate` and every analysis that scores a run take their settings from `run_settings`, so
they all give the same numbers for the same model: the geometry and CLAHE the run trained with, its
TTA, its memory format and its precision.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from cifarlab.config.recipe import Recipe
from cifarlab.data.equalise import clahe_from, clahe_of
from cifarlab.errors import CifarlabError
from cifarlab.evaluation.preprocessing import Preprocessing
from cifarlab.evaluation.tta import check_tta_mode
from cifarlab.models import eval_geometry
from cifarlab.models.input_config import InputConfig
from cifarlab.training.step import resolve_precision

# Images per forward pass of a model scored without a recipe.
DEFAULT_BATCH_SIZE = 500


@dataclass(frozen=True)
class EvalSettings:
    """Everything `predict`, `score_split` and `evaluate_split` need besides the model and the images.

    preprocessing    uint8 images -> model inputs (CLAHE, geometry, mean/std; see `Preprocessing`);
    split            the split's name, also that of its files (eval_<split>.json): val, test, test_ema;
    tta              test-time augmentation (`cifarlab.evaluation.tta`);
    batch_size       images per forward pass: memory and speed, not the scores (beyond bf16 rounding);
    channels_last    the memory format of the inputs;
    autocast_dtype   e.g. torch.bfloat16 for a run trained in bf16; None: full precision;
    device           where the model runs; None: the model's own device;
    bins             reliability bins of the calibration numbers.
    """

    preprocessing: Preprocessing
    split: str = "test"
    tta: str = "none"
    batch_size: int = DEFAULT_BATCH_SIZE
    channels_last: bool = False
    autocast_dtype: Optional[torch.dtype] = None
    device: Optional[str | torch.device] = None
    bins: int = 15

    def __post_init__(self) -> None:
        check_tta_mode(self.tta)
        if self.batch_size < 1:
            raise CifarlabError(f"batch_size={self.batch_size} must be at least 1")


def model_normalisation(model: nn.Module) -> Optional[tuple]:
    """(mean, std) the model brings (pretrained weights); None when it uses the training data's own."""
    config = getattr(model, "input_config", None)
    return (config.mean, config.std) if config is not None and config.mean is not None else None


def evaluation_geometry(model: nn.Module, recipe: Recipe) -> dict:
    """`resize=side` (or nothing): evaluation sees the geometry the model was trained at."""
    return eval_geometry(getattr(model, "input_config", InputConfig()), recipe.augment)


def run_preprocessing(model: nn.Module, recipe: Recipe, mean: Sequence[float], std: Sequence[float]) -> Preprocessing:
    """The inputs a run's model was trained on: its recipe's CLAHE and geometry, then `mean`/`std`."""
    return Preprocessing(mean, std, clahe=clahe_of(recipe.data), **evaluation_geometry(model, recipe))


def run_settings(model: nn.Module, recipe: Recipe, mean: Sequence[float], std: Sequence[float], *, split: str = "test",
                 tta: Optional[str] = None, batch_size: Optional[int] = None,
                 device: Optional[str | torch.device] = None) -> EvalSettings:
    """How a run's `model` is scored: its preprocessing (`run_preprocessing` with the run's `mean`/`std`),
    TTA and batch size from the recipe's eval section unless given, channels_last as it trained, and bf16
    autocast where the run trained in bf16 on the device the model is scored on."""
    place = torch.device(device) if device is not None else next((p.device for p in model.parameters()), torch.device("cpu"))
    bf16 = resolve_precision(recipe.train.precision, place) == "bf16"
    return EvalSettings(
        run_preprocessing(model, recipe, mean, std), split=split, tta=tta or recipe.eval.tta,
        batch_size=recipe.eval.batch_size if batch_size is None else batch_size,
        channels_last=recipe.train.channels_last, autocast_dtype=torch.bfloat16 if bf16 else None, device=device,
    )


def model_settings(model: nn.Module, mean: Sequence[float], std: Sequence[float], *, tta: Optional[str] = None,
                   batch_size: Optional[int] = None) -> EvalSettings:
    """How a model without a run is scored: `mean`/`std` and the CLAHE its input config records (an
    exported run's file), at the images' own size, in full precision, with `tta` (default none)."""
    config = getattr(model, "input_config", None) or InputConfig()
    preprocessing = Preprocessing(mean, std, clahe=clahe_from(config.clahe_clip_limit, config.clahe_grid))
    return EvalSettings(preprocessing, tta=tta or "none", batch_size=DEFAULT_BATCH_SIZE if batch_size is None else batch_size)
