"""Every model carries its input config; evaluation geometry and weights names resolve in one place."""

from __future__ import annotations

import pytest
import torch

from cifarlab.config.recipe import AugmentConfig
from cifarlab.errors import CifarlabError
from cifarlab.models import InputConfig, create, eval_geometry, model_for_weights, names


def build_on_meta(name: str, **options):
    with torch.device("meta"):
        return create(name, **options)


@pytest.mark.parametrize("name", [n for n in names() if not n.startswith("bit_")])
def test_every_cifar_model_uses_the_training_data_statistics_at_32x32(name):
    config = build_on_meta(name).input_config
    assert config == InputConfig(mean=None, std=None, input_size=(3, 32, 32), resize=None, crop=None, weights=None)


def test_bit_models_carry_the_bit_normalisation_and_hyperrule_geometry():
    model = build_on_meta("bit_r50x1")
    assert model.input_config.mean == model.input_config.std == (0.5, 0.5, 0.5)
    assert (model.input_config.resize, model.input_config.crop) == (160, 128)
    assert model.input_config.input_size == model.input_size == (3, 128, 128)
    # The mapping older callers read stays in step with the config.
    assert model.preprocessing == {"mean": (0.5,) * 3, "std": (0.5,) * 3, "resize": 160, "crop": 128}


def test_bit_with_the_cifar_root_sees_32x32_images_without_resizing():
    model = build_on_meta("bit_resnetv2", depths=(1, 1, 1, 1), width=0.5, root="cifar")
    assert model.input_config.input_size == (3, 32, 32)
    assert eval_geometry(model.input_config) == {}
    assert model.preprocessing["resize"] is None


def test_training_geometry_of_the_recipe_decides_the_evaluation_side():
    bit = build_on_meta("bit_r50x1").input_config
    assert eval_geometry(bit, AugmentConfig(resize=160, crop=128)) == {"resize": 128}
    assert eval_geometry(bit, AugmentConfig(resize=96)) == {"resize": 96}
    # Trained at the native size: evaluated at the native size, whatever the model was pretrained at.
    assert eval_geometry(bit, AugmentConfig()) == {}
    assert eval_geometry(build_on_meta("resnet18").input_config, AugmentConfig(crop=24)) == {"resize": 24}


def test_without_a_recipe_the_model_config_gives_the_evaluation_side():
    assert eval_geometry(build_on_meta("bit_r50x1").input_config) == {"resize": 128}
    assert eval_geometry(build_on_meta("resnet18").input_config) == {}


def test_input_config_survives_its_json_form():
    config = InputConfig(mean=(0.4, 0.5, 0.6), std=(0.2, 0.2, 0.3), resize=40, crop=32, weights="a.safetensors")
    assert InputConfig.from_json(config.to_json()) == config


def test_official_bit_names_map_to_their_registered_model():
    assert model_for_weights("BiT-M-R101x3") == "bit_r101x3"
    assert model_for_weights("BiT-S-R50x1") == "bit_r50x1"
    assert all(model_for_weights(n) in names() for n in ("BiT-M-R152x4", "BiT-S-R152x2", "BiT-M-R50x3"))


def test_weights_that_do_not_say_their_model_are_an_error():
    with pytest.raises(CifarlabError, match="name the model"):
        model_for_weights("weights.npz")
