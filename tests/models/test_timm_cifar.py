"""timm backbones as `timm/<name>`: the CIFAR stem, the heads, pretrained weights from local files, offline errors."""

from __future__ import annotations

import math
import sys

import pytest
import torch
import torch.nn.functional as F

timm = pytest.importorskip("timm")

from safetensors.torch import save_file

from cifarlab.config import recipe_from_dict
from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.models.timm_weights import resample_kernel
from cifarlab.runner.run import run_recipe


def save_state(model: torch.nn.Module, path) -> None:
    """A state dict in timm's own published formats (safetensors for the Hub, pickled for .pth)."""
    state = {key: value.contiguous() for key, value in model.state_dict().items()}
    if str(path).endswith(".safetensors"):
        save_file(state, str(path))
    else:
        torch.save(state, path)


@pytest.mark.parametrize("name, channels, side", [
    ("resnet18", 512, 4),        # 7x7 stem + max-pool
    ("resnet26d", 2048, 4),      # deep stem, bottlenecks, average-pool shortcuts (the ResNet-50 shape, shorter)
    ("resnet10t", 512, 4),       # tiered deep stem
    ("convnext_atto", 320, 4),   # 4x4 stride-4 patchify stem
    ("regnetx_002", 368, 2),     # stride-2 3x3 stem, four stride-2 stages
])
def test_the_rebuilt_stem_keeps_32x32_at_the_first_stage_and_gives_cifar_sized_features(name, channels, side):
    model = create(f"timm/{name}", num_classes=7).eval()
    first = model.get_submodule(model.pretrained_cfg["first_conv"])
    assert first.kernel_size == (3, 3) and first.stride == (1, 1)
    with torch.no_grad():
        features = model.forward_features(torch.randn(2, 3, 32, 32))
        logits = model(torch.randn(2, 3, 32, 32))
    assert tuple(features.shape) == (2, channels, side, side)
    assert tuple(logits.shape) == (2, 7)


def test_stem_stride_2_halves_the_feature_maps():
    model = create("timm/resnet18", num_classes=10, stem_stride=2).eval()
    with torch.no_grad():
        assert model.forward_features(torch.randn(1, 3, 32, 32)).shape[-1] == 2


def test_mlp_head_dropblock_and_activation_are_built_as_asked():
    model = create("timm/resnet18", num_classes=5, head="mlp", head_hidden=32, head_dropout=0.5,
                   drop_block_rate=0.2, activation="silu")
    head = model.get_classifier()
    assert [type(m).__name__ for m in head] == ["Linear", "SiLU", "Dropout", "Linear"]
    assert head[0].out_features == 32 and head[2].p == 0.5 and head[3].out_features == 5
    kinds = {type(m).__name__ for m in model.modules()}
    assert "DropBlock2d" in kinds and "ReLU" not in kinds
    with pytest.raises(CifarlabError, match="head_dropout belongs to the mlp head"):
        create("timm/resnet18", num_classes=5, head_dropout=0.5)


def test_weights_from_a_timm_file_fill_the_backbone_and_leave_out_the_imagenet_head(tmp_path):
    source = timm.create_model("resnet18", num_classes=1000)
    for suffix in (".safetensors", ".pth"):
        path = tmp_path / f"resnet18{suffix}"
        save_state(source, path)
        model = create("timm/resnet18", num_classes=10, weights=path)
        assert torch.equal(model.layer3[1].conv2.weight, source.layer3[1].conv2.weight)
        assert torch.equal(model.bn1.running_var, source.bn1.running_var)
        assert torch.allclose(model.conv1.weight, resample_kernel(source.conv1.weight))
        assert model.fc.weight.shape == (10, 512)
        assert model.input_config.mean == tuple(source.pretrained_cfg["mean"])
        assert model.input_config.weights == str(path)


def test_random_weights_normalise_with_the_training_data_statistics():
    assert create("timm/resnet10t", num_classes=10).input_config.mean is None


def test_a_torchvision_state_dict_loads_into_the_timm_name(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    source = torchvision.models.resnet18()
    torch.save({"state_dict": source.state_dict()}, tmp_path / "resnet18-tv.pth")  # wrapped, as training scripts save
    model = create("timm/resnet18", num_classes=100, weights=tmp_path / "resnet18-tv.pth", head="mlp")
    assert torch.equal(model.layer4[1].bn2.weight, source.layer4[1].bn2.weight)
    assert torch.equal(model.layer2[0].downsample[0].weight, source.layer2[0].downsample[0].weight)


def test_pretrained_reads_the_hugging_face_cache_layout_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    repo = tmp_path / "hub" / "models--timm--resnet10t.c3_in1k"
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc123")
    source = timm.create_model("resnet10t")
    save_state(source, repo / "snapshots" / "abc123" / "model.safetensors")
    model = create("timm/resnet10t", num_classes=10, weights="pretrained")
    assert torch.equal(model.layer2[0].conv1.weight, source.layer2[0].conv1.weight)
    assert torch.equal(model.conv1[0].weight, source.conv1[0].weight)  # a 3x3 stem only changes its stride


def test_offline_without_the_file_names_what_was_looked_for_and_how_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(CifarlabError) as cached:
        create("timm/resnet50", num_classes=100, weights="pretrained")
    message = str(cached.value)
    assert str(tmp_path / "empty" / "models--timm--resnet50.a1_in1k") in message
    assert "huggingface.co/timm/resnet50.a1_in1k" in message and "model.weights=" in message
    with pytest.raises(CifarlabError) as missing:
        create("timm/resnet50", num_classes=100, weights=tmp_path / "resnet50.safetensors")
    assert str(tmp_path / "resnet50.safetensors") in str(missing.value) and "not found" in str(missing.value)


def test_weights_of_another_network_are_refused_naming_the_keys(tmp_path):
    save_state(timm.create_model("resnet18"), tmp_path / "resnet18.pth")
    with pytest.raises(CifarlabError, match=r"do not fit timm/resnet34: parameters \d+ missing \(layer1\.2"):
        create("timm/resnet34", num_classes=10, weights=tmp_path / "resnet18.pth")


def test_unknown_names_and_families_without_a_known_stem_are_errors():
    with pytest.raises(CifarlabError, match="Closest: timm/resnet18"):
        create("timm/resnt18")
    with pytest.raises(CifarlabError, match="ResNet, RegNet, ConvNeXt"):
        create("timm/vit_tiny_patch16_224")


def test_without_timm_the_error_names_the_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # makes `import timm` fail
    with pytest.raises(CifarlabError, match=r"pip install 'cifarlab\[timm\]'"):
        create("timm/resnet18")


def gabor_bank(filters: int, size: int, seed: int = 0) -> torch.Tensor:
    """Oriented, coloured Gabor filters: the kind of kernel an ImageNet stem learns."""
    generator = torch.Generator().manual_seed(seed)
    offsets = torch.arange(size) - (size - 1) / 2
    y, x = torch.meshgrid(offsets, offsets, indexing="ij")
    bank = []
    for _ in range(filters):
        angle, frequency, sigma, phase = torch.rand(4, generator=generator)
        along = x * torch.cos(angle * math.pi) + y * torch.sin(angle * math.pi)
        envelope = torch.exp(-(x**2 + y**2) / (2 * (1 + 1.5 * sigma) ** 2))
        wave = torch.cos(2 * math.pi * (0.15 + 0.3 * frequency) * along + 2 * math.pi * phase)
        bank.append(torch.randn(3, 1, 1, generator=generator) * envelope * wave)
    return 0.1 * torch.stack(bank)


def test_the_3x3_stem_on_cifar_images_answers_like_the_pretrained_7x7_stem_on_upsampled_images(tmp_path, cifar10):
    source = timm.create_model("resnet18")
    with torch.no_grad():
        source.conv1.weight.copy_(gabor_bank(64, 7))
    save_state(source, tmp_path / "gabor.pth")
    model = create("timm/resnet18", num_classes=10, weights=tmp_path / "gabor.pth")
    images = cifar10.test_images[:128].float() / 255
    images = (images - images.mean((0, 2, 3), keepdim=True)) / images.std((0, 2, 3), keepdim=True)
    with torch.no_grad():
        # The ImageNet stem saw objects ~2x larger than CIFAR's: compare at the same output size.
        reference = source.conv1(F.interpolate(images, scale_factor=2, mode="bilinear", align_corners=False))
        rebuilt = model.conv1(images)
        cropped = F.conv2d(images, source.conv1.weight[:, :, 2:5, 2:5], padding=1)  # the naive alternative

    def agreement(output):
        correlation = torch.corrcoef(torch.stack([output.flatten(), reference.flatten()]))[0, 1]
        std_ratio = (output.std((0, 2, 3)) / reference.std((0, 2, 3))).median()
        return float(correlation), float(std_ratio)

    correlation, std_ratio = agreement(rebuilt)
    assert rebuilt.shape == reference.shape == (128, 64, 32, 32)
    assert correlation > 0.85 and 0.8 < std_ratio < 1.25
    naive_correlation, naive_ratio = agreement(cropped)
    assert naive_correlation < 0.8 and naive_ratio > 1.5  # so the check above can tell a good init from a poor one


def test_one_real_training_step_of_a_pretrained_timm_model_through_run_recipe(tmp_path, cifar10):
    source = timm.create_model("resnet10t")
    save_state(source, tmp_path / "resnet10t.safetensors")
    recipe = recipe_from_dict({
        "name": "timm", "out_dir": str(tmp_path / "runs"),
        "data": {"dataset": "cifar10", "val_size": 0, "train_limit": 100},
        "model": {"name": "timm/resnet10t", "weights": str(tmp_path / "resnet10t.safetensors"),
                  "options": {"head": "mlp", "head_hidden": 16, "head_dropout": 0.5, "drop_block_rate": 0.1,
                              "stem_stride": 2}},
        "optim": {"name": "adoptw", "lr": 1e-3, "betas": [0.9, 0.9999], "backbone_lr_scale": 0.1},
        "train": {"epochs": 1, "batch_size": 20, "device": "cpu", "channels_last": False},
        "eval": {"test": False},
        "log": {"sinks": []},
    }, source="test")
    result = run_recipe(recipe, dataset=cifar10)
    assert result.status == "finished"
    trained = result.model
    assert trained.input_config.mean == tuple(source.pretrained_cfg["mean"])
    assert not torch.equal(trained.layer1[0].conv1.weight, source.layer1[0].conv1.weight)  # the backbone trained
    assert torch.isfinite(trained.get_classifier()[3].weight).all()


def test_a_cifarlab_checkpoint_loads_with_the_statistics_it_was_trained_with(tmp_path):
    from cifarlab.runs.checkpoint import save_checkpoint

    source = create("timm/resnet10t", num_classes=10)
    cifar_mean, cifar_std = [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]
    save_checkpoint(tmp_path / "best.pt", model=source.state_dict(), mean=cifar_mean, std=cifar_std, num_classes=10)
    model = create("timm/resnet10t", num_classes=100, weights=tmp_path / "best.pt")  # fine-tune to other classes
    assert torch.equal(model.layer4[0].conv2.weight, source.layer4[0].conv2.weight)
    assert torch.equal(model.conv1[0].weight, source.conv1[0].weight)  # already a CIFAR stem: loaded as it is
    assert model.input_config.mean == tuple(cifar_mean) and model.input_config.std == tuple(cifar_std)


def test_an_exported_file_fine_tunes_to_other_classes_and_still_loads_whole_without_a_name(tmp_path):
    from cifarlab.models.input_config import InputConfig
    from cifarlab.models.portable import PortableHeader, save_portable

    source = create("timm/resnet10t", num_classes=10, head="mlp", head_hidden=8)
    config = InputConfig(mean=(0.49, 0.48, 0.45), std=(0.25, 0.24, 0.26))
    header = PortableHeader(model="timm/resnet10t", num_classes=10, options={"head": "mlp", "head_hidden": 8},
                            classes=tuple("abcdefghij"), input_config=config)
    path = save_portable(source, tmp_path / "cifar10.safetensors", header)
    fine_tuned = create("timm/resnet10t", num_classes=100, weights=path)
    assert torch.equal(fine_tuned.layer3[0].conv1.weight, source.layer3[0].conv1.weight)
    assert fine_tuned.fc.weight.shape == (100, 512) and fine_tuned.input_config.mean == config.mean
    whole = create(weights=path)  # no name: the file says what it is, head included
    assert torch.equal(whole.fc[3].weight, source.fc[3].weight)
