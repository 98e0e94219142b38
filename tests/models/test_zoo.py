"""The CIFAR zoo: parameter counts agree with the reference implementations, shapes and logits are right.

Expected counts (10 classes) come from the public references, not from this code:
  [T] the pytorch-cifar README table (counted there with thop);
  [S] torchsummary printouts of the references (WRN-28-10: the widely used PyTorch WRN;
      ResNet-101/152, DenseNet, DPN-92, ResNet-9: reference and ERA summaries);
  [F] the FDU zoo table, which gives 0.01M only; the exact value is the layer-by-layer sum of
      the reference layout, written out in the module docstring;
  [L] layer-by-layer sum of the reference layout (no published exact count).
thop sums in float32, so its table rounds the largest counts to a representable float:
PreAct-ResNet-101 42,501,192, PreAct-ResNet-152 58,144,840 and ResNeXt-29 8x64d 89,598,280
are the float32 images of the exact 42,501,194, 58,144,842 and 89,598,282 used below.

Every net runs at batch 2 for 10 and 100 classes on the meta device, which propagates the real
shapes through every layer at no arithmetic cost. Forward passes on real weights run on CPU:
  batch 2 at 10 and 100 classes: the nets under 0.5 GMACs per image (FORWARD_BATCH_2);
  batch 1 at 10 classes: one net per block type from 0.5 to 1.1 GMACs (FORWARD_BATCH_1);
  no CPU forward (SHAPE_ONLY) for deeper or wider copies of those block types and the biggest
  nets, 1.1 to 14 GMACs (ResNeXt-29 8x64d, WRN-28-10, (PreAct-)ResNet-152, ...).
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.models.summary import count_parameters

EXPECTED_PARAMS = {
    "resnet18": 11_173_962,  # [T]
    "resnet34": 21_282_122,  # [T]
    "resnet50": 23_520_842,  # [T]
    "resnet101": 42_512_970,  # [S]
    "resnet152": 58_156_618,  # [S]
    "preact_resnet18": 11_171_146,  # [T]
    "preact_resnet34": 21_279_306,  # [T]
    "preact_resnet50": 23_509_066,  # [T]
    "preact_resnet101": 42_501_194,  # [T], exact (see above)
    "preact_resnet152": 58_144_842,  # [T], exact (see above)
    "wrn_16_8": 10_965_866,  # [L] same layout as WRN-28-10 [S]
    "wrn_28_10": 36_489_290,  # [S]
    "resnext29_2x32d": 2_297_418,  # [F] 2.30M
    "resnext29_2x64d": 9_128_778,  # [T]
    "resnext29_4x64d": 27_104_586,  # [T]
    "resnext29_8x64d": 89_598_282,  # [T], exact (see above)
    "resnext29_32x4d": 4_774_218,  # [T]
    "resnext50_2x40d": 17_296_650,  # [F] 17.30M
    "resnext50_8x14d": 20_864_362,  # [F] 20.86M
    "resnext50_32x4d": 22_991_178,  # [F] prints 22.98M; the layout that gives 17.30M and 20.86M gives 22.99M
    "densenet121": 6_956_298,  # [T]
    "densenet161": 26_482_378,  # [T]
    "densenet169": 12_493_322,  # [T]
    "densenet201": 18_104_330,  # [T]
    "densenet_cifar": 1_000_618,  # [S]
    "dpn26": 11_574_842,  # [T]
    "dpn92": 34_236_634,  # [T]
    "dla": 16_291_386,  # [F] 16.29M
    "simple_dla": 15_142_970,  # [S]
    "vgg11": 9_225_610,  # [L] vgg11_bn less its BatchNorm
    "vgg13": 9_410_122,  # [L]
    "vgg16": 14_719_818,  # [L]
    "vgg19": 20_029_514,  # [L]
    "vgg11_bn": 9_231_114,  # [T]
    "vgg13_bn": 9_416_010,  # [T]
    "vgg16_bn": 14_728_266,  # [T]
    "vgg19_bn": 20_040_522,  # [T]
    "resnet9": 6_573_130,  # [S] ERA summaries
    "convnet5": 1_549_898,  # [L] the layout in cifarlab.models.convnet
    "lenet": 62_006,  # [L] 456 + 2,416 + 48,120 + 10,164 + 850 ([T] prints 62,007)
}

FORWARD_BATCH_2 = [
    "lenet", "convnet5", "densenet_cifar", "resnet9", "resnext29_2x32d",
    "vgg11", "vgg13", "vgg16", "vgg19", "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn",
]  # fmt: skip
FORWARD_BATCH_1 = [
    "resnet18", "resnet50", "preact_resnet18", "preact_resnet50", "resnext29_32x4d",
    "densenet121", "dpn26", "dla", "simple_dla",
]  # fmt: skip
SHAPE_ONLY = [
    "resnet34", "resnet101", "resnet152", "preact_resnet34", "preact_resnet101", "preact_resnet152",
    "wrn_16_8", "wrn_28_10", "resnext29_2x64d", "resnext29_4x64d", "resnext29_8x64d",
    "resnext50_2x40d", "resnext50_8x14d", "resnext50_32x4d",
    "densenet161", "densenet169", "densenet201", "dpn92",
]  # fmt: skip
ZOO = list(EXPECTED_PARAMS)


def build_on_meta(name: str, num_classes: int = 10) -> nn.Module:
    with torch.device("meta"):
        return create(name, num_classes)


def test_every_zoo_model_has_one_forward_plan():
    plans = FORWARD_BATCH_2 + FORWARD_BATCH_1 + SHAPE_ONLY
    assert sorted(plans) == sorted(ZOO)


@pytest.mark.parametrize("name", ZOO)
def test_parameter_count_matches_reference(name):
    assert count_parameters(build_on_meta(name)) == EXPECTED_PARAMS[name]


def test_head_grows_with_the_class_count():
    # ResNet-18 for CIFAR-100: the 512-wide linear layer gains 90 * 513 parameters.
    assert count_parameters(build_on_meta("resnet18", 100)) == 11_220_132


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("num_classes", [10, 100])
def test_shapes_run_through_every_layer_to_one_logit_per_class(name, num_classes):
    model = build_on_meta(name, num_classes)
    out = model(torch.empty(2, *model.input_size, device="meta"))
    assert tuple(out.shape) == (2, num_classes)


@pytest.mark.parametrize("name", ZOO)
def test_model_records_the_cifar_input_size(name):
    assert tuple(build_on_meta(name).input_size) == (3, 32, 32)


def forward_on_cpu(name: str, num_classes: int, batch: int) -> torch.Tensor:
    torch.manual_seed(0)
    model = create(name, num_classes)
    with torch.inference_mode():
        return model(torch.randn(batch, 3, 32, 32))


@pytest.mark.parametrize("name", FORWARD_BATCH_2)
@pytest.mark.parametrize("num_classes", [10, 100])
def test_cpu_forward_of_a_batch_of_two_gives_finite_logits(name, num_classes):
    out = forward_on_cpu(name, num_classes, batch=2)
    assert out.shape == (2, num_classes)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", FORWARD_BATCH_1)
def test_cpu_forward_of_one_image_gives_finite_logits(name):
    out = forward_on_cpu(name, 10, batch=1)
    assert out.shape == (1, 10)
    assert torch.isfinite(out).all()


def test_dropout_option_adds_dropout_before_the_classifier():
    model = create("resnet18", dropout=0.3)
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.3]
    assert not any(isinstance(m, nn.Dropout) for m in create("resnet18").modules())


def test_wrn_block_dropout_sits_inside_every_block():
    model = build_on_meta("wrn_16_8")
    assert not any(isinstance(m, nn.Dropout) for m in model.modules())
    with torch.device("meta"):
        model = create("wrn_16_8", block_dropout=0.3)
    assert sum(isinstance(m, nn.Dropout) for m in model.modules()) == 6  # 3 stages x 2 blocks


@pytest.mark.parametrize("bad", [-0.1, 1.0, "0.5"])
def test_bad_dropout_is_an_error_naming_the_option(bad):
    with pytest.raises(CifarlabError, match="dropout"):
        create("resnet18", dropout=bad)


def test_bad_class_count_is_an_error_naming_the_fix():
    with pytest.raises(CifarlabError, match="num_classes"):
        create("lenet", num_classes=0)


def test_resnet9_convs_each_own_their_weights():
    model = create("resnet9")
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 8  # prep, layer1 + 2 residual, layer2, layer3 + 2 residual
    assert len({conv.weight.data_ptr() for conv in convs}) == len(convs)


def test_resnet9_returns_logits_not_probabilities():
    model = create("resnet9")
    assert not any(isinstance(m, (nn.Softmax, nn.LogSoftmax)) for m in model.modules())
    torch.manual_seed(0)
    with torch.inference_mode():
        out = model.eval()(torch.randn(4, 3, 32, 32))
    sums_to_one = torch.allclose(out.sum(1), torch.ones(4), atol=1e-3)
    assert not (sums_to_one and (out >= 0).all())
    # Cross-entropy on these logits equals NLL on their log-softmax: nothing normalised them already.
    target = torch.tensor([0, 1, 2, 3])
    ce = nn.functional.cross_entropy(out, target)
    nll_of_outputs = nn.functional.nll_loss(out, target)
    assert not torch.isclose(ce, nll_of_outputs)
