"""channel_stats and dataset_info: exact per-channel moments and the dataset summary."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cifarlab.data import channel_stats, dataset_info
from cifarlab.errors import CifarlabError


def float64_reference(images: torch.Tensor, chunk: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and population std per channel from exact integer sums of x and x^2, then float64."""
    n = images.shape[0] * images.shape[2] * images.shape[3]
    s1 = torch.zeros(images.shape[1], dtype=torch.int64)
    s2 = torch.zeros(images.shape[1], dtype=torch.int64)
    for i in range(0, len(images), chunk):
        x = images[i:i + chunk].long()
        s1 += x.sum(dim=(0, 2, 3))
        s2 += (x * x).sum(dim=(0, 2, 3))
    mean = s1.double() / n
    return mean / 255, (s2.double() / n - mean**2).sqrt() / 255


def test_channel_stats_match_a_float64_computation():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (300, 3, 9, 7), dtype=torch.uint8, generator=generator)
    images[:, 1] //= 4  # give each channel its own distribution
    images[:, 2] = 255 - images[:, 2] // 2
    mean, std = channel_stats(images)
    ref_mean, ref_std = float64_reference(images)
    assert mean.dtype == std.dtype == torch.float64 and mean.shape == (3,)
    torch.testing.assert_close(mean, ref_mean, rtol=0, atol=1e-12)
    torch.testing.assert_close(std, ref_std, rtol=0, atol=1e-12)
    assert mean[1] < 0.3 < 0.7 < mean[2]


def test_channel_stats_of_a_constant_image_have_zero_spread():
    mean, std = channel_stats(torch.full((4, 3, 2, 2), 51, dtype=torch.uint8))
    torch.testing.assert_close(mean, torch.full((3,), 0.2, dtype=torch.float64))
    assert std.tolist() == [0.0, 0.0, 0.0]


def test_channel_stats_refuse_float_images():
    with pytest.raises(CifarlabError, match="need non-empty .* uint8 images"):
        channel_stats(torch.rand(2, 3, 4, 4))


@pytest.mark.slow
def test_cifar10_stats_match_float64_and_the_published_values(cifar10):
    mean, std = channel_stats(cifar10.train_images)
    ref_mean, ref_std = float64_reference(cifar10.train_images)
    torch.testing.assert_close(mean, ref_mean, rtol=0, atol=1e-6)
    torch.testing.assert_close(std, ref_std, rtol=0, atol=1e-6)
    published = torch.tensor([0.4914, 0.4822, 0.4465], dtype=torch.float64)
    torch.testing.assert_close(mean, published, rtol=0, atol=1e-4)


def test_dataset_info_summarises_sizes_classes_and_train_statistics(tmp_path, monkeypatch):
    monkeypatch.setenv("CIFARLAB_CACHE", str(tmp_path / "cache"))
    rng = np.random.default_rng(0)
    for split, counts in (("train", {"cat": 3, "ant": 2}), ("test", {"cat": 1, "ant": 1})):
        for cls, n in counts.items():
            (tmp_path / "t" / split / cls).mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 256, (4, 5, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(tmp_path / "t" / split / cls / f"{i}.png")
    info = dataset_info(f"folder:{tmp_path / 't'}")
    assert info["classes"] == ["ant", "cat"] and info["num_classes"] == 2
    assert info["image_shape"] == [3, 4, 5]
    assert (info["train"], info["test"]) == (5, 2)
    assert info["train_per_class"] == [2, 3] and info["test_per_class"] == [1, 1]
    train = torch.stack([torch.from_numpy(np.array(Image.open(p))).permute(2, 0, 1)
                         for p in sorted((tmp_path / "t" / "train").rglob("*.png"))])
    ref_mean, ref_std = float64_reference(train)
    assert info["mean"] == pytest.approx(ref_mean.tolist(), abs=1e-12)
    assert info["std"] == pytest.approx(ref_std.tolist(), abs=1e-12)
