"""The kuangliu/pytorch-cifar families: reference parameter counts, logits, options, `--layers` and the shipped sweep.

Expected counts (10 classes) are kuangliu's: sum(p.numel()) of the models built by
kuangliu/pytorch-cifar's own code (models/*.py at commit 49b7aa9; ShuffleNetG2/G3 with the
bottleneck width `out_planes / 4` read as the integer division the Python 2 code meant, which
changes no value since every width there is a multiple of 4).
"""

from __future__ import annotations

import sys
from collections import Counter

import pytest
import torch
from torch import nn

from cifarlab.cli import main
from cifarlab.errors import CifarlabError
from cifarlab.models import create, names
from cifarlab.models.efficientnet import stochastic_depth
from cifarlab.models.layer_table import format_layer_table, layer_table
from cifarlab.models.summary import count_parameters, multiply_adds
from tests.models.test_activation import activation_calls

KUANGLIU_PARAMS = {
    "googlenet": 6_166_250,
    "mobilenet": 3_217_226,
    "mobilenet_v2": 2_296_922,
    "senet18": 11_260_354,
    "shufflenet_g2": 887_582,
    "shufflenet_g3": 862_768,
    "shufflenet_v2_x0_5": 352_042,
    "shufflenet_v2_x1": 1_263_854,
    "shufflenet_v2_x1_5": 2_488_874,
    "shufflenet_v2_x2": 5_338_026,
    "efficientnet_b0": 3_599_686,
    "regnetx_200mf": 2_321_946,
    "regnetx_400mf": 4_779_338,
    "regnety_400mf": 5_714_362,
    "pnasnet_a": 130_646,
    "pnasnet_b": 451_626,
}
NEW_MODELS = list(KUANGLIU_PARAMS)
# The README "Accuracy" table of kuangliu/pytorch-cifar, in its order, as cifarlab names the models.
README_MODELS = [
    "vgg16_bn", "resnet18", "resnet50", "resnet101", "regnetx_200mf", "regnety_400mf", "mobilenet_v2",
    "resnext29_32x4d", "resnext29_2x64d", "simple_dla", "densenet121", "preact_resnet18", "dpn92", "dla",
]  # fmt: skip


def build_on_meta(name: str, **options) -> nn.Module:
    with torch.device("meta"):
        return create(name, **options)


def test_every_kuangliu_family_is_registered():
    assert [name for name in NEW_MODELS if name not in names()] == []


@pytest.mark.parametrize("name", NEW_MODELS)
def test_parameter_count_is_kuangliu_s(name):
    assert count_parameters(build_on_meta(name)) == KUANGLIU_PARAMS[name]


@pytest.mark.parametrize("name", NEW_MODELS)
def test_a_batch_of_two_images_gives_two_rows_of_ten_finite_logits(name):
    torch.manual_seed(0)
    model = create(name).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", NEW_MODELS)
def test_the_class_count_sets_the_logits(name):
    model = build_on_meta(name, num_classes=100)
    assert tuple(model(torch.empty(2, 3, 32, 32, device="meta")).shape) == (2, 100)


@pytest.mark.parametrize("name", NEW_MODELS)
def test_the_activation_option_replaces_every_activation_and_keeps_the_parameters(name):
    default = nn.SiLU if name == "efficientnet_b0" else nn.ReLU  # EfficientNet's swish is SiLU
    default_calls = activation_calls(build_on_meta(name))
    assert set(default_calls) == {default}
    chosen = build_on_meta(name, activation="gelu")
    assert activation_calls(chosen) == Counter({nn.GELU: default_calls[default]})
    assert count_parameters(chosen) == KUANGLIU_PARAMS[name]


@pytest.mark.parametrize("name", NEW_MODELS)
def test_the_dropout_option_puts_dropout_before_the_classifier(name):
    default = 0.2 if name == "efficientnet_b0" else None  # kuangliu's EfficientNet-B0 has dropout 0.2
    assert [m.p for m in build_on_meta(name).modules() if isinstance(m, nn.Dropout)] == ([default] if default else [])
    assert [m.p for m in build_on_meta(name, dropout=0.3).modules() if isinstance(m, nn.Dropout)] == [0.3]


def test_efficientnet_drop_connect_is_off_by_default_as_in_the_reference_and_rises_over_the_blocks():
    assert [block.drop_rate for block in build_on_meta("efficientnet_b0").blocks] == [0.0] * 16
    rates = [block.drop_rate for block in build_on_meta("efficientnet_b0", drop_connect=0.2).blocks]
    assert rates[0] == 0.0 and rates == sorted(rates) and rates[-1] == pytest.approx(0.2 * 15 / 16)
    with pytest.raises(CifarlabError, match="drop_connect"):
        create("efficientnet_b0", drop_connect=1.5)


def test_stochastic_depth_drops_whole_samples_in_training_only():
    x = torch.ones(400, 2, 2, 2)
    torch.manual_seed(0)
    out = stochastic_depth(x, 0.25, training=True)
    per_sample = out.flatten(1)
    dropped = (per_sample == 0).all(1)
    assert torch.equal(per_sample[~dropped], torch.full_like(per_sample[~dropped], 1 / 0.75))
    assert 0.15 < dropped.float().mean() < 0.35
    assert stochastic_depth(x, 0.25, training=False) is x


def test_efficientnet_keeps_the_reference_s_unused_expansion_of_its_first_block():
    first = build_on_meta("efficientnet_b0").blocks[0]
    assert first.skip_expand and count_parameters(first.expand) == 32 * 32 + 2 * 32


@pytest.mark.parametrize("name", NEW_MODELS)
def test_layers_command_prints_the_table_with_the_model_s_total(name, capsys):
    assert main(["models", name, "--layers"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{name} (10 classes)")
    assert "Output Shape" in out and "Mult-Adds" in out and "Trainable" in out
    assert f"Total params: {KUANGLIU_PARAMS[name]:,}\n" in out
    assert "[1, 10]" in out  # the model's own row: one image in, ten logits out


@pytest.mark.parametrize("name", ["mobilenet_v2", "efficientnet_b0", "lenet", "resnet18"])
def test_layer_table_rows_add_up_to_the_parameter_and_multiply_add_counts(name):
    table = layer_table(name)
    model = build_on_meta(name)
    assert table.total_params == count_parameters(model) == sum(row.params or 0 for row in table.rows)
    assert table.total_macs == multiply_adds(model) == sum(row.macs or 0 for row in table.rows)
    assert f"{table.total_macs:,}" in format_layer_table(table)


def test_layers_without_a_model_name_or_torchinfo_is_one_clear_error(monkeypatch, capsys):
    assert main(["models", "--layers"]) == 2
    assert "--layers needs the models" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "torchinfo", None)  # as if it were not installed
    assert main(["models", "googlenet", "--layers"]) == 2
    assert "pip install 'cifarlab[tune]'" in capsys.readouterr().err


def test_the_kuangliu_zoo_sweep_resolves_to_the_readme_table_with_kuangliu_s_recipe():
    from cifarlab.sweeps.grid import grid_points
    from cifarlab.sweeps.grid_sweep import sweep_spec

    spec = sweep_spec("configs/sweeps/kuangliu_zoo.yaml")
    points = grid_points(spec.recipe, spec.grid, spec.overrides)
    models = list(dict.fromkeys(p.recipe.model.name for p in points))
    assert models == README_MODELS and set(models) <= set(names()) and len(points) == 3 * len(models)
    assert set(spec.reference["values"]) == set(models)
    assert spec.reference["values"]["dla"] == 95.47 and spec.reference["values"]["vgg16_bn"] == 92.64
    recipe = points[0].recipe
    assert (recipe.optim.name, recipe.optim.lr, recipe.optim.momentum, recipe.optim.weight_decay) == ("sgd", 0.1, 0.9, 5e-4)
    assert (recipe.schedule.name, recipe.schedule.min_lr, recipe.train.epochs, recipe.train.batch_size) == ("cosine", 0.0, 200, 128)
    assert (recipe.augment.crop_padding, recipe.augment.pad_mode, recipe.augment.flip) == (4, "zeros", "random")
    assert recipe.data.full_train and recipe.augment.cutout == 0 and not recipe.optim.nesterov


def test_readme_models_have_the_readme_s_layouts():
    # The README's VGG16 has BatchNorm: kuangliu's VGG('VGG16') has 14,728,266 parameters, as vgg16_bn.
    assert count_parameters(build_on_meta("vgg16_bn")) == 14_728_266


def test_an_unknown_activation_is_an_error_listing_the_choices():
    with pytest.raises(CifarlabError, match="unknown activation 'swish'; choose one of relu"):
        create("mobilenet", activation="swish")
