"""BiT ResNet-V2: published sizes, official-layout .npz load/save, equivalence with reference forwards."""

from __future__ import annotations

import urllib.request
from functools import partial

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cifarlab.errors import CifarlabError
from cifarlab.models import bit_weights, create, names
from cifarlab.models.bit import ResNetV2, bit_resnetv2

# A reduced network that still has every kind of unit: strided and unstrided projections,
# identity shortcuts (stages of 2 units) and 1-channel GroupNorm groups.
DEPTHS, WIDTH = (2, 1, 1, 2), 0.5
SIZES = {"bit_r50x1": ((3, 4, 6, 3), 1), "bit_r50x3": ((3, 4, 6, 3), 3), "bit_r101x1": ((3, 4, 23, 3), 1),
         "bit_r101x3": ((3, 4, 23, 3), 3), "bit_r152x2": ((3, 8, 36, 3), 2), "bit_r152x4": ((3, 8, 36, 3), 4)}


def official_arrays(depths, width, classes, seed=0) -> dict[str, np.ndarray]:
    """Random arrays named and shaped as in the published BiT checkpoints (kernels HWIO)."""
    rng = np.random.default_rng(seed)
    arrays = {}

    def conv(key, k, cin, cout):
        # Small kernels with per-output-channel offsets and scales, like trained ones: the
        # standardisation (per channel, biased variance, eps) then really changes the result.
        offset, scale = 0.01 * rng.standard_normal(cout), 0.02 * rng.uniform(0.5, 2.0, cout)
        arrays[key] = (offset + scale * rng.standard_normal((k, k, cin, cout))).astype(np.float32)

    def norm(prefix, ch):
        arrays[prefix + "group_norm/gamma"] = (1 + 0.3 * rng.standard_normal(ch)).astype(np.float32)
        arrays[prefix + "group_norm/beta"] = (0.3 * rng.standard_normal(ch)).astype(np.float32)

    ch = lambda n: int(n * width)
    conv("resnet/root_block/standardized_conv2d/kernel", 7, 3, ch(64))
    cin = ch(64)
    for b, units in enumerate(depths, start=1):
        cmid, cout = ch(64 * 2 ** (b - 1)), ch(256 * 2 ** (b - 1))
        for u in range(1, units + 1):
            p = f"resnet/block{b}/unit{u:02d}/"
            norm(p + "a/", cin)
            conv(p + "a/standardized_conv2d/kernel", 1, cin, cmid)
            norm(p + "b/", cmid)
            conv(p + "b/standardized_conv2d/kernel", 3, cmid, cmid)
            norm(p + "c/", cmid)
            conv(p + "c/standardized_conv2d/kernel", 1, cmid, cout)
            if u == 1:
                conv(p + "a/proj/standardized_conv2d/kernel", 1, cin, cout)
            cin = cout
    norm("resnet/", cin)
    arrays["resnet/head/conv2d/kernel"] = (0.1 * rng.standard_normal((1, 1, cin, classes))).astype(np.float32)
    arrays["resnet/head/conv2d/bias"] = (0.1 * rng.standard_normal(classes)).astype(np.float32)
    return arrays


def reference_forward(arrays: dict[str, np.ndarray], x: torch.Tensor) -> torch.Tensor:
    """BiT ResNet-V2 written from the paper and the official definition, in float64, straight off the arrays."""
    t = {k: torch.from_numpy(v).double() for k, v in arrays.items()}

    def std_conv(h, key, stride=1):
        w = t[key].permute(3, 2, 0, 1)  # HWIO -> OIHW
        mean = w.mean(dim=(1, 2, 3), keepdim=True)
        var = ((w - mean) ** 2).mean(dim=(1, 2, 3), keepdim=True)
        return F.conv2d(h, (w - mean) / torch.sqrt(var + 1e-10), stride=stride, padding=w.shape[-1] // 2)

    def gn_relu(h, prefix):
        return F.relu(F.group_norm(h, 32, t[prefix + "group_norm/gamma"], t[prefix + "group_norm/beta"], eps=1e-5))

    h = std_conv(x.double(), "resnet/root_block/standardized_conv2d/kernel", stride=2)
    h = F.max_pool2d(F.pad(h, (1, 1, 1, 1), value=0.0), kernel_size=3, stride=2)
    block = 1
    while any(k.startswith(f"resnet/block{block}/") for k in t):
        unit = 1
        while f"resnet/block{block}/unit{unit:02d}/a/group_norm/gamma" in t:
            p = f"resnet/block{block}/unit{unit:02d}/"
            stride = 2 if block > 1 and unit == 1 else 1
            pre = gn_relu(h, p + "a/")
            proj = p + "a/proj/standardized_conv2d/kernel"
            shortcut = std_conv(pre, proj, stride) if proj in t else h
            out = std_conv(pre, p + "a/standardized_conv2d/kernel")
            out = std_conv(gn_relu(out, p + "b/"), p + "b/standardized_conv2d/kernel", stride)
            out = std_conv(gn_relu(out, p + "c/"), p + "c/standardized_conv2d/kernel")
            h = out + shortcut
            unit += 1
        block += 1
    features = gn_relu(h, "resnet/").mean(dim=(2, 3))
    return features @ t["resnet/head/conv2d/kernel"][0, 0] + t["resnet/head/conv2d/bias"]


def write_npz(path, arrays):
    np.savez(path, **arrays)
    return path


@pytest.fixture
def images():
    return torch.randn(2, 3, 40, 40, generator=torch.Generator().manual_seed(1))


def randomised(model):
    """A network with every parameter random (GroupNorm affine and head too), so no mapping error hides."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.2 + (1.0 if p.ndim == 1 else 0.0))
    return model


def test_every_published_size_is_registered_with_bit_preprocessing():
    for name, (depths, width) in SIZES.items():
        assert name in names()
        with torch.device("meta"):
            model = create(name, num_classes=10)
        assert (model.depths, model.width, model.arch) == (depths, width, name[4:])
        assert model.input_size == (3, 128, 128)
        assert model.preprocessing == {"mean": (0.5,) * 3, "std": (0.5,) * 3, "resize": 160, "crop": 128}


def test_weight_standardisation_equals_the_var_mean_formulation():
    from cifarlab.models.bit import WS_EPS, standardize_weight

    generator = torch.Generator().manual_seed(0)
    # Trained-like kernels: per-channel offsets and scales, and one filter whose offset dwarfs its spread.
    weight = 0.01 * torch.randn(64, 32, 3, 3, generator=generator) + 0.05 * torch.randn(64, 1, 1, 1, generator=generator)
    weight[5] = 0.1 + 1e-3 * torch.randn(32, 3, 3, generator=generator)
    var, mean = torch.var_mean(weight, dim=(1, 2, 3), keepdim=True, unbiased=False)
    expected = (weight - mean) / torch.sqrt(var + WS_EPS)
    assert (standardize_weight(weight) - expected).abs().max() < 1e-5
    weight.requires_grad_(True)
    standardize_weight(weight).square().mul(torch.arange(9.0).view(1, 1, 3, 3)).sum().backward()
    assert torch.isfinite(weight.grad).all() and weight.grad.abs().sum() > 0


def test_parameter_counts_match_timm_bit_models_for_every_size():
    timm = pytest.importorskip("timm")
    for name in SIZES:
        with torch.device("meta"):
            ours = create(name, num_classes=21843)
            theirs = timm.create_model(f"resnetv2_{name[5:]}_bit", num_classes=21843)
        count = lambda m: sum(p.numel() for p in m.parameters())
        assert count(ours) == count(theirs), name


def test_expected_checkpoint_sizes_are_the_float32_parameter_bytes():
    for official in bit_weights.OFFICIAL_NAMES:
        classes = 21843 if official.startswith("BiT-M") else 1000
        with torch.device("meta"):
            model = create(f"bit_{bit_weights.architecture_of(official)}", num_classes=classes)
        size_mb = 4 * sum(p.numel() for p in model.parameters()) / 1e6
        assert abs(size_mb - bit_weights.APPROX_MB[official]) < 0.01 * size_mb, official


def test_official_layout_npz_gives_the_reference_forward_outputs(tmp_path, images):
    arrays = official_arrays(DEPTHS, WIDTH, classes=7)
    path = write_npz(tmp_path / "ckpt.npz", arrays)
    model = bit_resnetv2(7, depths=DEPTHS, width=WIDTH, weights=str(path)).eval()
    with torch.no_grad():
        ours = model(images)
    expected = reference_forward(arrays, images)
    assert ours.shape == (2, 7)
    assert expected.abs().max() > 0.1  # a real signal, not a degenerate all-zero output
    torch.testing.assert_close(ours.double(), expected, atol=1e-4, rtol=0)


def test_official_layout_npz_gives_timm_resnetv2_outputs(tmp_path, images):
    resnetv2 = pytest.importorskip("timm.models.resnetv2")
    from timm.layers import StdConv2d

    depths = (1, 1, 1, 1)
    path = write_npz(tmp_path / "ckpt.npz", official_arrays(depths, 1, classes=5, seed=3))
    ours = bit_resnetv2(5, depths=depths, width=1, weights=path).eval()
    # timm's BiT models standardise with eps 1e-8; the official port (and cifarlab) with 1e-10.
    theirs = resnetv2.ResNetV2(list(depths), num_classes=5, stem_type="fixed",
                               conv_layer=partial(StdConv2d, eps=1e-10)).eval()
    with torch.no_grad():
        resnetv2._load_weights(theirs, str(path))
        torch.testing.assert_close(ours(images), theirs(images), atol=1e-4, rtol=0)


def test_saved_npz_reloads_into_the_identical_network(tmp_path, images):
    source = randomised(bit_resnetv2(6, depths=DEPTHS, width=WIDTH)).eval()
    path = bit_weights.save_npz(source, tmp_path / "export" / "model.npz")
    loaded = ResNetV2(DEPTHS, WIDTH, 6)  # fresh, differently initialised
    bit_weights.load_weights(loaded, path)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(images), source(images))
    assert [p.name for p in path.parent.iterdir()] == ["model.npz"]  # no temp file left behind


def test_saved_npz_uses_official_keys_and_hwio_kernels(tmp_path):
    model = bit_resnetv2(4, depths=DEPTHS, width=WIDTH)
    saved = bit_weights.read_npz(bit_weights.save_npz(model, tmp_path / "m.npz"))
    reference = official_arrays(DEPTHS, WIDTH, classes=4)
    assert {k: v.shape for k, v in saved.items()} == {k: v.shape for k, v in reference.items()}
    assert np.array_equal(saved["resnet/root_block/standardized_conv2d/kernel"],
                          model.root.conv.weight.detach().numpy().transpose(2, 3, 1, 0))


def test_checkpoint_with_another_head_loads_body_and_zeroes_head(tmp_path, images):
    arrays = official_arrays(DEPTHS, WIDTH, classes=21)
    path = write_npz(tmp_path / "ckpt.npz", arrays)
    model = bit_resnetv2(10, depths=DEPTHS, width=WIDTH, weights=path).eval()
    with torch.no_grad():
        assert torch.count_nonzero(model(images)) == 0
    assert np.array_equal(model.body.block4.unit02.conv2.weight.detach().numpy(),
                          arrays["resnet/block4/unit02/b/standardized_conv2d/kernel"].transpose(3, 2, 0, 1))
    random_head = bit_resnetv2(10, depths=DEPTHS, width=WIDTH, weights=path, zero_head=False).eval()
    with torch.no_grad():
        assert torch.count_nonzero(random_head(images)) == 20


@pytest.mark.parametrize("change, expected", [
    (lambda a: a.pop("resnet/block2/unit01/b/group_norm/beta"), "missing keys (1): resnet/block2/unit01/b/group_norm/beta"),
    (lambda a: a.__setitem__("resnet/block1/unit03/a/group_norm/gamma", np.ones(128, np.float32)),
     "unexpected keys (1): resnet/block1/unit03/a/group_norm/gamma"),
    (lambda a: a.__setitem__("resnet/block3/unit01/c/standardized_conv2d/kernel", np.ones((1, 1, 128, 256), np.float32)),
     "mis-shaped (1): resnet/block3/unit01/c/standardized_conv2d/kernel (1, 1, 128, 256) (model needs (1, 1, 128, 512))"),
    (lambda a: a.__setitem__("resnet/head/conv2d/kernel", np.ones((1, 1, 64, 10), np.float32)),
     "mis-shaped (1): resnet/head/conv2d/kernel (1, 1, 64, 10)"),
])
def test_missing_unexpected_and_misshaped_keys_are_refused_by_name(tmp_path, change, expected):
    arrays = official_arrays(DEPTHS, WIDTH, classes=10)
    change(arrays)
    path = write_npz(tmp_path / "bad.npz", arrays)
    with pytest.raises(CifarlabError, match="does not fit") as err:
        bit_resnetv2(10, depths=DEPTHS, width=WIDTH, weights=path)
    assert expected in str(err.value)


def test_checkpoint_of_another_size_names_the_size_it_is(tmp_path):
    path = write_npz(tmp_path / "deeper.npz", official_arrays((2, 1, 3, 2), WIDTH, classes=10))
    with pytest.raises(CifarlabError, match=r"looks like units \(2, 1, 3, 2\), width x0.5"):
        bit_resnetv2(10, depths=DEPTHS, width=WIDTH, weights=path)


def test_official_name_for_another_size_is_refused_before_any_download(monkeypatch):
    monkeypatch.setattr(bit_weights, "download", lambda *a: pytest.fail("must not download"))
    with pytest.raises(CifarlabError, match="create 'bit_r50x3'.*BiT-S-R50x1 / BiT-M-R50x1 for bit_r50x1"):
        bit_weights.load_weights(bit_resnetv2(10), "BiT-M-R50x3")


def test_unknown_weights_suggest_the_official_spelling():
    with pytest.raises(CifarlabError, match="Did you mean BiT-M-R50x1"):
        bit_resnetv2(10, depths=DEPTHS, width=WIDTH, weights="BiT-M-R50X1")


def test_unreadable_npz_is_refused(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip archive")
    with pytest.raises(CifarlabError, match="not a readable .npz"):
        bit_resnetv2(10, depths=DEPTHS, width=WIDTH, weights=path)


# --- download of official names ---------------------------------------------------------------

@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A file:// mirror holding BiT-M-R50x1.npz (a reduced network) and an empty cache."""
    served = tmp_path / "mirror"
    served.mkdir()
    source = randomised(bit_resnetv2(10, depths=DEPTHS, width=WIDTH)).eval()
    bit_weights.save_npz(source, served / "BiT-M-R50x1.npz")
    monkeypatch.setattr(bit_weights, "URL_BASE", served.as_uri())
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setitem(bit_weights.APPROX_MB, "BiT-M-R50x1", (served / "BiT-M-R50x1.npz").stat().st_size / 1e6)
    return source


def test_official_name_downloads_once_into_the_cache_weights_folder(mirror, monkeypatch, tmp_path, images):
    path = bit_weights.official_file("BiT-M-R50x1")
    assert path == tmp_path / "cache" / "weights" / "BiT-M-R50x1.npz"
    assert [p.name for p in path.parent.iterdir()] == ["BiT-M-R50x1.npz"]
    model = bit_resnetv2(10, depths=DEPTHS, width=WIDTH)
    bit_weights.load_arrays(model, bit_weights.read_npz(path))
    with torch.no_grad():
        assert torch.equal(model.eval()(images), mirror(images))
    monkeypatch.setattr(bit_weights, "URL_BASE", "http://127.0.0.1:9")  # offline now: the cache is used
    assert bit_weights.official_file("BiT-M-R50x1") == path


def test_download_far_from_the_expected_size_is_refused(mirror, monkeypatch, tmp_path):
    monkeypatch.setitem(bit_weights.APPROX_MB, "BiT-M-R50x1", 273)
    with pytest.raises(CifarlabError, match="about 273 MB: not that checkpoint"):
        bit_weights.official_file("BiT-M-R50x1")
    assert not list((tmp_path / "cache").rglob("*"))  # no partial file, and no folder made for it


def test_download_shorter_than_its_content_length_is_refused(mirror, monkeypatch, tmp_path):
    urlopen = urllib.request.urlopen

    def short_response(url, timeout):
        response = urlopen(url, timeout=timeout)
        length = int(response.headers["Content-Length"])
        response.headers.replace_header("Content-Length", str(length + 4096))
        return response

    monkeypatch.setattr(urllib.request, "urlopen", short_response)
    with pytest.raises(CifarlabError, match="incomplete: got"):
        bit_weights.official_file("BiT-M-R50x1")
    assert not list((tmp_path / "cache").rglob("*"))  # no partial file, and no folder made for it


def test_offline_download_says_which_file_to_put_where(monkeypatch, tmp_path):
    monkeypatch.setattr(bit_weights, "URL_BASE", "http://127.0.0.1:9")
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path))
    with pytest.raises(CifarlabError) as err:
        create("bit_r50x1", num_classes=10, weights="BiT-M-R50x1")
    message = str(err.value)
    assert "downloading" in message and "BiT-M-R50x1.npz failed" in message
    assert f"put it at {tmp_path / 'weights' / 'BiT-M-R50x1.npz'}" in message
