"""Frost from the published photographs (`--frost-images`): shrunk, cropped and blended as the published code does.

The photographs are not shipped, so these tests make stand-ins under the published file names.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cifarlab.cli import main
from cifarlab.errors import CifarlabError
from cifarlab.robustness import corrupt, weather
from cifarlab.robustness.dataset import spaced_indices, write_corrupted_set
from cifarlab.robustness.textures import frost_photos

# The published file names; the published code draws only the first five.
PUBLISHED_NAMES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg", "frost6.jpg")
# Sizes (height, width) that are not multiples of five, to pin the shrunk size.
SIZES = ((203, 178), (180, 261), (172, 172), (199, 230), (240, 186), (190, 190))


def _save(folder, name: str, pixels: np.ndarray) -> None:
    image = Image.fromarray(pixels)
    if name.endswith(".png"):
        image.convert("RGBA").save(folder / name)  # the published PNGs carry an alpha channel
    else:
        image.save(folder / name, quality=100)


def _stand_ins(folder, fill) -> np.ndarray:
    """Write six stand-in photographs made by `fill(index, height, width)`; return what each decodes to."""
    folder.mkdir(exist_ok=True)
    for index, (name, (height, width)) in enumerate(zip(PUBLISHED_NAMES, SIZES)):
        _save(folder, name, fill(index, height, width))
    return [np.asarray(Image.open(folder / name).convert("RGB")) for name in PUBLISHED_NAMES]


def _uniform(index: int, height: int, width: int) -> np.ndarray:
    colour = np.array([40 + 30 * index, 200 - 25 * index, 90 + 20 * index], dtype=np.uint8)
    return np.broadcast_to(colour, (height, width, 3)).copy()


def test_photos_are_shrunk_as_opencv_resizes_by_a_fifth_one_pixel_from_each_five_by_five_block(tmp_path):
    # OpenCV's bilinear resize by 0.2 (half-pixel centres) lands each output pixel exactly on input
    # pixel (5i + 2, 5j + 2); on noise, any averaging resize would give other values.
    rng = np.random.default_rng(0)
    decoded = _stand_ins(tmp_path, lambda index, height, width: rng.integers(0, 256, (height, width, 3), np.uint8))
    for index, photo in enumerate(frost_photos(tmp_path)):
        height, width = SIZES[index]
        assert photo.shape == (3, round(height * 0.2), round(width * 0.2))  # OpenCV's size for fx = fy = 0.2
        rows, cols = np.meshgrid(5 * np.arange(photo.shape[1]) + 2, 5 * np.arange(photo.shape[2]) + 2, indexing="ij")
        expected = torch.from_numpy(decoded[index][rows, cols]).permute(2, 0, 1)
        assert torch.equal(torch.round(photo * 255).to(torch.uint8), expected)


def test_frost_crops_are_whole_windows_of_one_of_the_first_five_drawn_anywhere_the_published_code_draws():
    # Each layer's values say where they sit: red the row, green the column, blue the layer.
    layers = []
    for index, (height, width) in enumerate(SIZES):
        rows, cols = torch.meshgrid(torch.arange(height // 5), torch.arange(width // 5), indexing="ij")
        layers.append(torch.stack([rows, cols, torch.full_like(rows, index)]).float())
    crops = weather.frost_crops(layers, 2000, 32, torch.Generator().manual_seed(0)).long()
    chosen = crops[:, 2, 0, 0]
    assert set(chosen.tolist()) == {0, 1, 2, 3, 4}  # never the sixth, as published
    tops, lefts = crops[:, 0, 0, 0], crops[:, 1, 0, 0]
    assert torch.equal(crops[:, 0], tops.view(-1, 1, 1) + torch.arange(32).view(1, 32, 1).expand(-1, -1, 32))
    assert torch.equal(crops[:, 1], lefts.view(-1, 1, 1) + torch.arange(32).view(1, 1, 32).expand(-1, 32, -1))
    heights = torch.tensor([layer.shape[1] for layer in layers])[chosen]
    widths = torch.tensor([layer.shape[2] for layer in layers])[chosen]
    # numpy's randint(0, size - 32): from 0 up to, not including, size - 32; both ends are reached.
    assert int(tops.min()) == 0 and bool((tops < heights - 32).all()) and bool((tops == heights - 33).any())
    assert int(lefts.min()) == 0 and bool((lefts < widths - 32).all()) and bool((lefts == widths - 33).any())


def _blends_of_a_photo(corrupted: torch.Tensor, clean: torch.Tensor, severity: int, colours) -> np.ndarray:
    """For each uniform stand-in colour, which corrupted images are exactly the published blend of it."""
    image_weight, frost_weight = weather.FROST[severity - 1]
    clean = clean.permute(0, 2, 3, 1).double().numpy()
    corrupted = corrupted.permute(0, 2, 3, 1).numpy()
    blends = [np.floor(np.clip(image_weight * clean + frost_weight * colour, 0, 255) + 1e-3) for colour in colours]
    return np.stack([(corrupted == blend).all(axis=(1, 2, 3)) for blend in blends])


def test_frost_with_photos_blends_the_crop_with_the_published_weights(tmp_path, test_slice):
    colours = [photo[0, 0].astype(np.float64) for photo in _stand_ins(tmp_path, _uniform)]
    photos = frost_photos(tmp_path)
    images = test_slice[:24]
    for severity in range(1, 6):
        matches = _blends_of_a_photo(corrupt(images, "frost", severity, seed=0, frost_photos=photos), images,
                                     severity, colours)
        assert matches[:5].any(axis=0).all() and not matches[5].any()


def test_cli_make_with_frost_images_crops_the_photographs(tmp_path, cifar10):
    colours = [photo[0, 0].astype(np.float64) for photo in _stand_ins(tmp_path / "photos", _uniform)]
    out = tmp_path / "c10c"
    assert main(["robustness", "make", "cifar10", "--out", str(out), "--corruptions", "frost", "--limit", "20",
                 "--frost-images", str(tmp_path / "photos")]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["frost.npy", "labels.npy"]
    frost = torch.from_numpy(np.load(out / "frost.npy")).permute(0, 3, 1, 2)
    clean = cifar10.test_images[spaced_indices(len(cifar10.test_labels), 20)]
    for severity in range(1, 6):
        matches = _blends_of_a_photo(frost[(severity - 1) * 20 : severity * 20], clean, severity, colours)
        assert matches[:5].any(axis=0).all()


@pytest.mark.parametrize("present", [(), ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg")])
def test_a_folder_without_the_photographs_is_one_error_naming_them_and_writes_nothing(tmp_path, capsys, present):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in present:
        _save(photos, name, _uniform(0, 200, 200))
    out = tmp_path / "c10c"
    assert main(["robustness", "make", "cifar10", "--out", str(out), "--corruptions", "frost", "--limit", "20",
                 "--frost-images", str(photos)]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cifarlab: error: ")
    assert "frost1.png, frost2.png, frost3.png, frost4.jpg, frost5.jpg" in lines[0]
    assert "frost5.jpg" in lines[0].split(";")[0]  # the missing one is named first
    assert captured.out == "" and not out.exists()


def test_unreadable_or_too_small_photographs_are_clear_errors(tmp_path, test_slice, cifar10):
    _stand_ins(tmp_path, _uniform)
    (tmp_path / "frost3.png").write_bytes(b"not an image")
    with pytest.raises(CifarlabError, match="frost3.png is not a readable image"):
        write_corrupted_set(test_slice[:4], cifar10.test_labels[:4], tmp_path / "out", ["frost"],
                            frost_images=tmp_path)
    assert not (tmp_path / "out").exists()
    _save(tmp_path, "frost3.png", _uniform(2, 160, 400))  # 32 rows once shrunk: no room for a crop
    with pytest.raises(CifarlabError, match=r"frost3.png is 400x160, 80x32 once shrunk by 0.2, too small"):
        frost_photos(tmp_path)
