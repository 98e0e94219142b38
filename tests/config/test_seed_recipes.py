"""Seed recipes hold the seed's values, and mark every other value as cifarlab's choice or tie it to a named source.

DL4DS is seeds/004, FDU seeds/002, ERA seeds/003 (see each recipe's header).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from cifarlab.config import load_recipe
from cifarlab.config.shipped import RECIPES_DIR
from cifarlab.models import create
from cifarlab.models.summary import count_parameters

SOURCE = Path(__file__).resolve().parents[2] / "src" / "cifarlab"
GPU_DL4DS = ["dl4ds/resnet50", "dl4ds/resnext50_32x4d", "dl4ds/resnet101", "dl4ds_convnet"]
CPU_DL4DS = ["dl4ds/cpu/pretrain_cifar10", "dl4ds/cpu/finetune", "dl4ds/cpu/scratch", "dl4ds/cpu/heavy_aug",
             "dl4ds/cpu/augmix"]
HEAVY_OPS = {"rotate", "brightness", "color_jitter", "gaussian_noise", "jpeg"}  # the seed's list, CLAHE aside


def _text(name: str) -> str:
    return (RECIPES_DIR / f"{name}.yaml").read_text()


def _load(name: str):
    return load_recipe(name, check_machine=False)  # fp16 recipes load anywhere; a run on a CPU is refused


def _assert_seed_training_values(recipe) -> None:
    """What seeds/004 states for its runs: ADOPTW, beta2 0.9999, wd 0.02, smoothing 0.1, clipped fp16, warmup + cosine."""
    assert recipe.data.dataset == "cifar100" and recipe.data.clahe_clip_limit is not None
    assert recipe.optim.name == "adoptw" and recipe.optim.betas[1] == 0.9999 and recipe.optim.weight_decay == 0.02
    assert recipe.schedule.name == "cosine" and recipe.schedule.warmup_epochs > 0
    assert recipe.train.label_smoothing == 0.1 and recipe.train.precision == "fp16"
    assert recipe.train.grad_clip is not None and recipe.train.grad_clip_mode == "value"
    assert recipe.augment.flip == "random" and recipe.augment.mixup_alpha > 0 and recipe.augment.cutmix_alpha > 0
    assert {op["name"] for op in recipe.augment.ops} == HEAVY_OPS


def test_resnet101_is_the_resnet50_recipe_with_the_seeds_best_single_network():
    resnet101, resnet50 = _load("dl4ds/resnet101"), _load("dl4ds/resnet50")
    assert resnet101.model.name == "timm/resnet101" and resnet101.model.weights == "pretrained"
    assert resnet101.name == "dl4ds_resnet101" and "0.72717" in resnet101.description
    same = replace(resnet101, name=resnet50.name, description=resnet50.description,
                   model=replace(resnet101.model, name=resnet50.model.name))
    assert same == resnet50  # "similar configuration as explained in Part 2": every other value is resnet50's
    options = resnet101.model.options
    assert (options["head"], options["head_dropout"], options["drop_block_rate"]) == ("mlp", 0.5, 0.5)
    assert resnet101.eval.tta == "none"  # the seed scored 0.72717 without test-time augmentation
    _assert_seed_training_values(resnet101)


def test_the_resnet101_recipe_builds_its_timm_network_with_the_seed_head():
    pytest.importorskip("timm")
    recipe = _load("dl4ds/resnet101")
    model = create(recipe.model.name, num_classes=100, **recipe.model.options)
    assert [type(m).__name__ for m in model.get_classifier()] == ["Linear", "ReLU", "Dropout", "Linear"]
    assert 40e6 < count_parameters(model) < 50e6  # ResNet-101's 42.5M backbone and the MLP head


@pytest.mark.parametrize("name", GPU_DL4DS)
def test_full_size_dl4ds_recipes_hold_the_seeds_values_and_add_no_crop(name):
    recipe = _load(name)
    _assert_seed_training_values(recipe)
    assert recipe.augment.crop_padding == 0  # the seed's augmentation list has no crop
    assert recipe.augment.flip_p == 0.5 and recipe.schedule.warmup_start_lr == 1e-5
    text = _text(name if name == "dl4ds_convnet" else "dl4ds/resnet50")
    for key in ("flip_p", "warmup_start_lr", "mixup_alpha", "crop_padding"):
        block = text[text.index(f"  {key}:") - 400 : text.index(f"  {key}:")]
        assert "cifarlab's choice" in block or "seed" in block, f"{name}: {key} says nothing of where it comes from"
    assert "train.precision=bf16" in _text(name) or "train.precision=bf16" in _text("dl4ds/resnet50")


def test_only_the_resnext_recipe_adds_the_seeds_sixteen_shifts():
    assert _load("dl4ds/resnext50_32x4d").eval.tta == "shift16"  # 0.73350 with TTA, its final model
    assert {_load(name).eval.tta for name in ("dl4ds/resnet50", "dl4ds/resnet101", "dl4ds_convnet")} == {"none"}


def test_the_part1_convnet_recipe_has_the_seeds_augmentation_set_and_clahe():
    recipe = _load("dl4ds_convnet")
    assert recipe.model.name == "convnet5" and recipe.data.clahe_clip_limit == 2.0
    text = _text("dl4ds_convnet")
    assert "ops:" in text and "every p and strength is cifarlab's choice" in text


@pytest.mark.parametrize("name", CPU_DL4DS)
def test_cpu_dl4ds_recipes_train_in_bf16_and_say_why_and_mark_their_crop(name):
    recipe = load_recipe(name)  # loads and validates on this CPU machine
    assert recipe.train.precision == "bf16" and recipe.augment.crop_padding == 4
    assert recipe.schedule.warmup_start_lr == 0.0 and recipe.augment.flip_p == 0.5
    own = "pretrain_cifar10" if name.endswith("pretrain_cifar10") else "finetune"
    text = _text(f"dl4ds/cpu/{own}")
    assert re.search(r"bf16, not the seed's fp16|not the seed's fp16", text)
    crop = text[: text.index("  crop_padding: 4")]
    assert "cifarlab's choice" in crop[crop.rindex("augment:"):]


def test_the_fdu_resnext50_recipe_explains_the_seeds_parameter_count():
    text = _text("fdu/resnext50_32x4d")
    model = create(load_recipe("fdu/resnext50_32x4d").model.name, num_classes=10)
    assert count_parameters(model) == 22_991_178 and "22,991,178" in text and "22.98M" in text
    assert "22,979,904" in text  # the count the seed's figure matches, named in the comment


@pytest.mark.parametrize("study", ["activation", "loss", "optimizer", "activation_cpu", "loss_cpu", "optimizer_cpu"])
def test_fdu_other_inquiries_variant_lists_are_marked_as_cifarlabs_choice(study):
    assert "cifarlab's choice" in (RECIPES_DIR / "fdu" / "studies" / f"{study}.yaml").read_text()


@pytest.mark.parametrize("phrase", ["course code", "CoarseDropout", "three-block", "ERA code", "public reference code"])
def test_no_comment_cites_code_that_is_neither_a_seed_nor_a_named_public_source(phrase):
    cited = [str(path.relative_to(SOURCE)) for path in sorted(SOURCE.rglob("*"))
             if path.suffix in (".py", ".yaml") and phrase.lower() in path.read_text().lower()]
    assert cited == []
