import pytest
import torch

from cifarlab.errors import CifarlabError
from cifarlab.models import create, names
from cifarlab.models.airbench import AirbenchNet, FrozenScaleBatchNorm

# airbench 0.1.8's own make_net94 (lib_airbench94.py), built from its classes on CPU, has
# 1,972,792 parameters, 1,971,352 of them trainable once its whitening weight is frozen
# (the 1,152 BatchNorm scales are parameters there too, with requires_grad=False).
AIRBENCH94_PARAMETERS = 1_972_792
AIRBENCH94_TRAINABLE_AFTER_WHITENING = 1_971_352


def test_airbench94_is_registered_and_maps_images_to_class_logits():
    assert "airbench94" in names()
    model = create("airbench94").eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert create("airbench94", num_classes=100).eval()(torch.randn(1, 3, 32, 32)).shape == (1, 100)


def test_airbench94_parameter_count_matches_airbench_reference_network():
    model = create("airbench94")
    assert sum(p.numel() for p in model.parameters()) == AIRBENCH94_PARAMETERS
    model.whiten.weight.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == AIRBENCH94_TRAINABLE_AFTER_WHITENING


def test_airbench94_layers_follow_the_reference_layout():
    model = create("airbench94")
    assert model.whiten.kernel_size == (2, 2) and model.whiten.out_channels == 24
    assert model.whiten.bias is not None and model.head.bias is None
    norms = [m for m in model.modules() if isinstance(m, FrozenScaleBatchNorm)]
    assert len(norms) == 6
    assert all(not n.weight.requires_grad and n.bias.requires_grad for n in norms)
    assert all(n.eps == 1e-12 and n.momentum == pytest.approx(0.4) for n in norms)
    assert model.scaling_factor == pytest.approx(1 / 9)


def test_width_multiplier_and_widths_build_smaller_networks():
    assert create("airbench94", width_multiplier=0.5).widths == (32, 128, 128)
    assert create("airbench94", width_multiplier=0.25).widths == (16, 64, 64)
    small = create("airbench94", widths=[8, 16, 16])
    assert small.widths == (8, 16, 16)
    assert small.eval()(torch.randn(3, 3, 32, 32)).shape == (3, 10)
    assert sum(p.numel() for p in small.parameters()) < AIRBENCH94_PARAMETERS / 50


# airbench96.py's network (KellerJordan/cifar10-airbench): widths 128, 512, 512, three convs per group, for 10
# classes; its layers add up to 312 (whitening) + 27,648 + 2 x 147,456 + 589,824 + 2 x 2,359,296
# + 3 x 2,359,296 + 5,120 (head) + 6,912 (BatchNorm scales and shifts) = 12,721,208.
AIRBENCH96_PARAMETERS = 12_721_208


def test_depth_3_builds_airbench96s_groups_with_a_residual_over_the_last_two_convs():
    model = create("airbench94", widths=[128, 512, 512], depth=3).eval()
    assert sum(p.numel() for p in model.parameters()) == AIRBENCH96_PARAMETERS
    group = model.groups[1]
    x = torch.randn(2, 128, 16, 16)
    with torch.no_grad():
        first = group.activ(group.norm1(group.pool(group.conv1(x))))
        middle = group.activ(group.norm2(group.conv2(first)))
        expected = group.activ(group.norm3(group.conv3(middle)) + first)
        assert torch.allclose(group(x), expected)
        assert model(torch.randn(2, 3, 24, 24)).shape == (2, 10)  # progressive resizing's small batches too
    assert not hasattr(create("airbench94").groups[0], "conv3")


def test_bad_widths_are_rejected_with_a_fix():
    with pytest.raises(CifarlabError, match=r"depth must be 2 \(airbench94's groups\) or 3"):
        create("airbench94", depth=4)
    with pytest.raises(CifarlabError, match="three positive integers"):
        create("airbench94", widths=[64, 256])
    with pytest.raises(CifarlabError, match="width_multiplier"):
        create("airbench94", width_multiplier=0)


def test_channels_last_bf16_autocast_matches_fp32_forward():
    torch.manual_seed(0)
    model = AirbenchNet(widths=(16, 32, 32)).eval()
    x = torch.randn(4, 3, 32, 32)
    ref = model(x)
    fast = model.to(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = fast(x.contiguous(memory_format=torch.channels_last)).float()
    assert torch.allclose(out, ref, atol=0.05 * ref.abs().max().item())
