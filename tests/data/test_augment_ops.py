"""Heavy augmentation ops: probabilities take effect, parameters are drawn per image, seeds repeat."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from cifarlab.data.augment import OPS, OpSetting, apply_op, check_ops, jensen_shannon
from cifarlab.data.augment.augmix import augmix, augmix_js
from cifarlab.data.augment.colour import equalize
from cifarlab.data.augment.jpeg import jpeg
from cifarlab.data.augment.policies import rand_augment, trivial_augment
from cifarlab.errors import CifarlabError


@pytest.fixture(scope="module")
def colourful(cifar10) -> torch.Tensor:
    """200 real CIFAR-10 training images that have colour (hue and saturation ops change them)."""
    images = cifar10.train_images[:1000]
    spread = (images.float().amax(1) - images.float().amin(1)).mean((1, 2))
    return images[spread > 20][:200].float() / 255.0


def _op(name: str, p: float) -> OpSetting:
    return check_ops([{"name": name, "p": p}])[0]


def _changed(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    return (after - before).abs().flatten(1).amax(1) > 0


@pytest.mark.parametrize("name", list(OPS))
def test_probability_zero_keeps_every_image_one_changes_every_image_half_changes_about_half(name, colourful):
    x = colourful
    assert torch.equal(apply_op(x, _op(name, 0.0), torch.Generator().manual_seed(1)), x)
    assert _changed(x, apply_op(x, _op(name, 1.0), torch.Generator().manual_seed(1))).all()
    share = _changed(x, apply_op(x, _op(name, 0.5), torch.Generator().manual_seed(1))).float().mean()
    assert 0.38 < share < 0.62, share


@pytest.mark.parametrize("name", list(OPS))
def test_parameters_are_drawn_per_image_not_per_batch(name, colourful):
    same = colourful[:1].repeat(16, 1, 1, 1)
    out = apply_op(same, _op(name, 1.0), torch.Generator().manual_seed(2))
    distinct = {tuple(image.flatten()[::7].tolist()) for image in out}
    assert len(distinct) >= 12, f"{name}: copies of one image came out alike ({len(distinct)} distinct of 16)"


@pytest.mark.parametrize("name", list(OPS))
def test_an_op_repeats_for_a_seed_and_differs_for_another(name, colourful):
    x = colourful[:32]
    first = apply_op(x, _op(name, 0.7), torch.Generator().manual_seed(5))
    again = apply_op(x, _op(name, 0.7), torch.Generator().manual_seed(5))
    other = apply_op(x, _op(name, 0.7), torch.Generator().manual_seed(6))
    assert torch.equal(first, again)
    assert not torch.equal(first, other)
    assert first.min() >= 0 and first.max() <= 1


@pytest.mark.parametrize("policy", [
    lambda x, g: rand_augment(x, 2, 9, g),
    lambda x, g: trivial_augment(x, g),
    lambda x, g: augmix(x, 3, None, 3.0, 1.0, g),
], ids=["randaugment", "trivialaugment", "augmix"])
def test_policies_choose_ops_per_image_and_repeat_for_a_seed(policy, colourful):
    same = colourful[:1].repeat(24, 1, 1, 1)
    out = policy(same, torch.Generator().manual_seed(3))
    distinct = {tuple(image.flatten()[::7].tolist()) for image in out}
    assert len(distinct) >= 10
    assert torch.equal(out, policy(same, torch.Generator().manual_seed(3)))
    assert out.min() >= 0 and out.max() <= 1


def test_jpeg_matches_libjpeg_within_about_one_grey_level(colourful):
    x = colourful[:64]
    for quality in (20, 75):
        ours = jpeg(x, torch.full((len(x),), quality))
        theirs = []
        for image in (x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy():
            buffer = io.BytesIO()
            Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
            theirs.append(np.array(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")))
        theirs = torch.from_numpy(np.stack(theirs)).permute(0, 3, 1, 2).float() / 255.0
        gap = (ours - theirs).abs().mean() * 255
        own_error = (theirs - x).abs().mean() * 255
        assert gap < 1.6 and own_error > 3 * gap, (quality, gap, own_error)


def test_equalize_spreads_a_low_contrast_image_over_the_full_range(colourful):
    dull = 0.4 + 0.2 * colourful[:4]
    out = equalize(dull)
    assert out.amin((2, 3)).max() < 0.05 and out.amax((2, 3)).min() > 0.95


def test_jensen_shannon_is_zero_for_agreeing_views_and_the_loss_uses_clean_rows_only():
    logits = torch.randn(4, 10)
    assert jensen_shannon(logits, logits, logits).abs() < 1e-6
    assert jensen_shannon(logits, logits.flip(1), logits) > 0.01
    labels = torch.tensor([1, 2, 3, 4])
    rows = torch.stack([logits, logits, logits], 1).flatten(0, 1)  # clean, view, view per image
    loss = augmix_js(0.0)(rows, labels.repeat_interleave(3))
    assert torch.allclose(loss, torch.nn.functional.cross_entropy(logits, labels), atol=1e-5)
    with pytest.raises(CifarlabError, match="augmix_js"):
        augmix_js(0.0)(torch.randn(4, 10), labels)


@pytest.mark.parametrize("ops, message", [
    ([{"name": "rotat"}], "did you mean 'rotate'"),
    ([{"name": "rotate", "degrees": 400}], "degrees must be a number between 0 and 180"),
    ([{"name": "rotate", "p": 1.5}], "p must be a probability"),
    ([{"name": "jpeg", "quality": [90, 30]}], r"\[low, high\] pair"),
    ([{"name": "jpeg", "qualty": 50}], "did you mean 'quality'"),
    ([{"name": "random_erasing", "fill": "grey"}], "'random' or a grey level"),
    (["rotate"], "must be a mapping with a name"),
])
def test_bad_op_settings_are_refused_naming_the_entry_and_the_fix(ops, message):
    with pytest.raises(CifarlabError, match=message) as caught:
        check_ops(ops)
    assert "augment.ops[0]" in str(caught.value)


def test_a_single_number_where_a_range_is_expected_means_a_fixed_value():
    op = check_ops([{"name": "jpeg", "quality": 40, "p": 1}])[0]
    assert op.params["quality"] == (40, 40) and op.p == 1.0
