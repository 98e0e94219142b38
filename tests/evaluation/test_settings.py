"""EvalSettings: built in one place from a run's recipe (or a model's own input config), checked when built."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cifarlab.config import recipe_from_dict
from cifarlab.data.equalise import Clahe
from cifarlab.errors import CifarlabError
from cifarlab.evaluation import EvalSettings, Preprocessing, model_settings, run_settings
from cifarlab.models import create
from cifarlab.models.input_config import InputConfig

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def _recipe(**sections):
    return recipe_from_dict({"model": {"name": "lenet"}, **sections}, source="test")


def test_a_plain_recipe_gives_its_eval_section_and_memory_format():
    recipe = _recipe(eval={"tta": "flip", "batch_size": 123}, train={"channels_last": False})
    settings = run_settings(create("lenet", 10), recipe, MEAN, STD)
    assert settings == EvalSettings(Preprocessing(MEAN, STD), split="test", tta="flip", batch_size=123)


def test_clahe_geometry_and_bf16_come_from_the_recipe_and_overrides_win():
    recipe = _recipe(data={"clahe_clip_limit": 3.0, "clahe_grid": 8}, augment={"resize": 40, "crop": 36},
                     train={"precision": "bf16"}, eval={"tta": "flip"})
    settings = run_settings(create("lenet", 10), recipe, list(MEAN), list(STD), split="val", tta="shift16", batch_size=7)
    assert settings.preprocessing == Preprocessing(MEAN, STD, resize=(36, 36), clahe=Clahe(3.0, 8))
    assert (settings.split, settings.tta, settings.batch_size) == ("val", "shift16", 7)
    assert settings.autocast_dtype == torch.bfloat16 and settings.channels_last


def test_a_bare_model_takes_the_clahe_its_input_config_records():
    model = create("lenet", 10)
    assert model_settings(model, MEAN, STD).preprocessing == Preprocessing(MEAN, STD)
    model.input_config = InputConfig(mean=MEAN, std=STD, clahe_clip_limit=2.0, clahe_grid=4)
    settings = model_settings(model, MEAN, STD, tta="flip", batch_size=9)
    assert settings.preprocessing.clahe == Clahe(2.0, 4) and (settings.tta, settings.batch_size) == ("flip", 9)
    assert model_settings(nn.Linear(2, 2), MEAN, STD).preprocessing.clahe is None  # no input config at all


@pytest.mark.parametrize("options, message", [
    (dict(tta="rotate"), "unknown test-time augmentation 'rotate'"),
    (dict(batch_size=0), "batch_size=0 must be at least 1"),
])
def test_bad_settings_are_refused_when_built(options, message):
    with pytest.raises(CifarlabError, match=message):
        EvalSettings(Preprocessing(MEAN, STD), **options)
    with pytest.raises(CifarlabError, match="crop=0 is not a size"):
        Preprocessing(MEAN, STD, crop=0)
