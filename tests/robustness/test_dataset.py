"""Corrupted-set folders: the published CIFAR-10-C layout, written atomically and read back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cifarlab.cli import main
from cifarlab.errors import CifarlabError
from cifarlab.robustness import corrupt
from cifarlab.robustness.dataset import (
    LABELS,
    corruptions_in,
    read_corruption,
    read_labels,
    spaced_indices,
    write_corrupted_set,
)
from tests.conftest import is_full_device


def test_write_corrupted_set_writes_the_published_layout(tmp_path, test_slice, cifar10):
    images, labels = test_slice[:16], cifar10.test_labels[torch.arange(16) * 311]
    written = write_corrupted_set(images, labels, tmp_path, ["fog", "pixelate"], seed=3)
    assert [path.name for path in written] == ["fog.npy", "pixelate.npy", LABELS]
    fog = np.load(tmp_path / "fog.npy")
    assert fog.dtype == np.uint8 and fog.shape == (80, 32, 32, 3)
    stored_labels = np.load(tmp_path / LABELS)
    assert stored_labels.dtype == np.uint8 and stored_labels.tolist() == labels.tolist() * 5
    # Severity s is block s - 1, images in HWC order.
    for severity in (1, 4):
        expected = corrupt(images, "fog", severity, seed=3).permute(0, 2, 3, 1).numpy()
        assert np.array_equal(fog[(severity - 1) * 16 : severity * 16], expected)
        assert torch.equal(read_corruption(tmp_path, "fog", severity), corrupt(images, "fog", severity, seed=3))
    assert torch.equal(read_labels(tmp_path), labels)
    assert torch.equal(read_labels(tmp_path, limit=4), labels[spaced_indices(16, 4)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fog.npy", "labels.npy", "pixelate.npy"]  # no temporaries


def test_a_published_style_file_is_read_by_severity_with_spaced_limit(tmp_path):
    # The published files: 5 * N images, severity-major, HWC uint8; labels likewise.
    stacked = np.zeros((5 * 10, 32, 32, 3), dtype=np.uint8)
    for row in range(50):
        stacked[row] = row
    np.save(tmp_path / "snow.npy", stacked)
    np.save(tmp_path / LABELS, np.tile(np.arange(10, dtype=np.uint8), 5))
    assert read_corruption(tmp_path, "snow", 3)[:, 0, 0, 0].tolist() == list(range(20, 30))
    assert read_corruption(tmp_path, "snow", 2, limit=5)[:, 0, 0, 0].tolist() == [10, 12, 14, 16, 18]
    assert corruptions_in(tmp_path) == ["snow"]


def test_spaced_indices_cover_the_split_evenly():
    assert spaced_indices(10, None).tolist() == list(range(10))
    assert spaced_indices(10_000, 4).tolist() == [0, 2500, 5000, 7500]
    assert spaced_indices(3, 8).tolist() == [0, 1, 2]
    with pytest.raises(CifarlabError, match="at least 1"):
        spaced_indices(10, 0)


def test_damaged_or_missing_files_are_clear_errors(tmp_path):
    np.save(tmp_path / "fog.npy", np.zeros((7, 32, 32, 3), dtype=np.uint8))  # not five severities
    with pytest.raises(CifarlabError, match="five severities stacked"):
        read_corruption(tmp_path, "fog", 1)
    with pytest.raises(CifarlabError, match="no snow.npy"):
        read_corruption(tmp_path, "snow", 1)
    with pytest.raises(CifarlabError, match="drop those from --corruptions"):
        corruptions_in(tmp_path, ["fog", "frost"])
    with pytest.raises(CifarlabError, match="does not exist"):
        corruptions_in(tmp_path / "nowhere")


def test_cli_make_writes_every_requested_corruption(tmp_path, capsys, cifar10):
    out = tmp_path / "c10c"
    assert main(["robustness", "make", "cifar10", "--out", str(out), "--corruptions", "contrast", "frost",
                 "--limit", "20"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["contrast.npy", "frost.npy", "labels.npy"]
    assert np.load(out / "frost.npy").shape == (100, 32, 32, 3)
    # Evenly spaced over the class-sorted split: two images of each class.
    assert np.bincount(np.load(out / LABELS)[:20], minlength=10).tolist() == [2] * 10
    assert "wrote" in capsys.readouterr().out


@pytest.mark.skipif(not is_full_device(), reason="needs /dev/full, the device where every write fails as on a full disk")
def test_a_full_disk_is_one_error_and_leaves_no_folder(tmp_path, test_slice, cifar10, monkeypatch):
    import builtins

    import cifarlab.robustness.dataset as dataset

    # Every .npy goes to a device where each write fails with ENOSPC, as on a full disk.
    monkeypatch.setattr(dataset, "open", lambda path, mode: builtins.open("/dev/full", mode), raising=False)
    out = tmp_path / "c10c"
    with pytest.raises(CifarlabError, match=r"cannot write .*fog.npy \(No space left on device\): the disk is full"):
        write_corrupted_set(test_slice[:16], cifar10.test_labels[:16], out, ["fog"], seed=3)
    assert not out.exists()  # the folder this call created is gone again
