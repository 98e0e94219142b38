"""BiT-HyperRule: resolution, schedule, MixUp and learning rate at every step, against the published rule."""

from __future__ import annotations

import pytest

from cifarlab.errors import CifarlabError
from cifarlab.transfer import hyperrule

TRAIN_SIZES = [10, 50, 19_999, 20_000, 499_999, 500_000]
IMAGE_SIZES = [32, 96]


def published_lr(step: int, dataset_size: int, base_lr: float):
    """The published schedule, written from its description: warmup, /10 after each decay step, end."""
    if dataset_size < 20_000:
        supports = [100, 200, 300, 400, 500]
    elif dataset_size < 500_000:
        supports = [500, 3000, 6000, 9000, 10_000]
    else:
        supports = [500, 6000, 12_000, 18_000, 20_000]
    if step < supports[0]:
        return base_lr * step / supports[0]
    if step >= supports[-1]:
        return None
    for boundary in supports[1:]:
        if boundary < step:
            base_lr /= 10
    return base_lr


@pytest.mark.parametrize("train_size", TRAIN_SIZES)
@pytest.mark.parametrize("image_size", IMAGE_SIZES)
def test_rule_matches_the_published_rule_at_every_step(train_size, image_size):
    rule = hyperrule(train_size, image_size)
    small_images = image_size * image_size < 96 * 96
    assert (rule.precrop, rule.crop) == ((160, 128) if small_images else (512, 480))
    assert rule.mixup_alpha == (0.0 if train_size < 20_000 else 0.1)
    assert (rule.base_lr, rule.batch_size, rule.momentum, rule.weight_decay) == (0.003, 512, 0.9, 0.0)
    total = rule.boundaries[-1]
    assert total == (500 if train_size < 20_000 else 10_000 if train_size < 500_000 else 20_000)
    for step in range(total + 1):
        assert rule.lr_at(step) == published_lr(step, train_size, 0.003), step
    assert rule.lr_at(total + 1) is None


def test_boundaries_switch_exactly_at_20k_and_500k_examples():
    assert hyperrule(19_999, 32).boundaries == (100, 200, 300, 400, 500)
    assert hyperrule(20_000, 32).boundaries == (500, 3000, 6000, 9000, 10_000)
    assert hyperrule(499_999, 32).boundaries == (500, 3000, 6000, 9000, 10_000)
    assert hyperrule(500_000, 32).boundaries == (500, 6000, 12_000, 18_000, 20_000)


def test_resolution_switches_at_an_area_of_96_by_96():
    assert (hyperrule(10, 95).precrop, hyperrule(10, 95).crop) == (160, 128)
    assert (hyperrule(10, 96).precrop, hyperrule(10, 96).crop) == (512, 480)
    assert hyperrule(10, (64, 143)).crop == 128  # 9152 < 9216
    assert hyperrule(10, (64, 144)).crop == 480  # 9216 is not below 96*96


def test_decay_takes_effect_on_the_step_after_each_boundary():
    rule = hyperrule(1000, 32)
    assert [rule.lr_at(s) for s in (0, 50, 100, 200)] == [0.0, 0.0015, 0.003, 0.003]
    assert rule.lr_at(201) == pytest.approx(0.0003)
    assert rule.lr_at(499) == pytest.approx(3e-6)
    assert rule.lr_at(500) is None


def test_learning_rate_is_base_lr_at_any_batch_size_as_published():
    # bit_hyperrule.get_lr takes no batch size; the notebook of seeds/000 trains batch 32 at 0.003 and ends at 3e-06.
    rule = hyperrule(50, 32, batch_size=32)
    assert rule.lr == 0.003 and rule.lr_at(100) == 0.003
    assert rule.lr_at(499) == pytest.approx(3e-6)
    assert hyperrule(50, 32, batch_size=4096).lr == 0.003


def test_linear_lr_scaling_scales_with_batch_size():
    rule = hyperrule(50, 32, batch_size=128, base_lr=0.003, lr_scaling="linear")
    assert rule.lr == pytest.approx(0.00075)
    assert rule.lr_at(100) == pytest.approx(0.00075)
    assert rule.lr_at(50) == pytest.approx(0.000375)
    assert rule.lr_at(250) == pytest.approx(0.000075)


def test_an_unknown_lr_scaling_is_refused_with_the_choices():
    with pytest.raises(CifarlabError, match="lr_scaling must be one of none, linear"):
        hyperrule(50, 32, lr_scaling="sqrt")


def test_every_value_can_be_overridden():
    rule = hyperrule(50, 32, mixup_alpha=0.2, boundaries=(10, 20, 30, 40, 50), precrop=40, crop=32)
    assert (rule.mixup_alpha, rule.boundaries, rule.precrop, rule.crop) == (0.2, (10, 20, 30, 40, 50), 40, 32)
    assert rule.lr_at(5) == pytest.approx(0.0015)
    assert rule.lr_at(50) is None
    assert rule.replace(base_lr=0.01, batch_size=256).lr_at(15) == pytest.approx(0.01)
    changed = rule.replace(base_lr=0.01, batch_size=256, lr_scaling="linear")
    assert changed.lr_at(15) == pytest.approx(0.005)
    assert rule.base_lr == 0.003  # frozen: replace made a copy


def test_bad_overrides_are_refused_with_the_fix():
    with pytest.raises(CifarlabError, match="unknown HyperRule value"):
        hyperrule(50, 32, warmup=10)
    with pytest.raises(CifarlabError, match="5 non-decreasing step counts"):
        hyperrule(50, 32, boundaries=(100, 50, 300, 400, 500))
    with pytest.raises(CifarlabError, match="at least 1 example"):
        hyperrule(0, 32)
