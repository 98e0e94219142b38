"""cifarlab.robustness.corrupt: every corruption at every severity, on real CIFAR-10 images."""

from __future__ import annotations

import colorsys

import numpy as np
import pytest
import torch

from cifarlab.errors import CifarlabError
from cifarlab.robustness import CORRUPTIONS, SEVERITIES, corrupt, filters
from cifarlab.robustness.corruptions import DETERMINISTIC
from cifarlab.robustness.digital import BRIGHTNESS, CONTRAST, SATURATE
from cifarlab.robustness.noise import GAUSSIAN_NOISE, IMPULSE_NOISE, SHOT_NOISE

# Published severity 1 of elastic_transform has the largest affine jitter, so it changes the
# images most; every other corruption changes them more at severity 5 than at 1.
NOT_GROWING = {"elastic_transform"}
# These grow at every step (a tolerance for the random ones).
GROWING_EVERY_STEP = {"gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise", "defocus_blur",
                      "gaussian_blur", "zoom_blur", "motion_blur", "fog", "brightness", "contrast", "pixelate",
                      "jpeg_compression", "snow"}


def _change(before: torch.Tensor, after: torch.Tensor) -> float:
    """Mean absolute difference in 8-bit levels."""
    return (after.float() - before.float()).abs().mean().item()


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_corruption_changes_images_by_a_sensible_amount_growing_with_severity(name, test_slice):
    changes = []
    for severity in SEVERITIES:
        corrupted = corrupt(test_slice, name, severity, seed=0)
        assert corrupted.dtype == torch.uint8 and corrupted.shape == test_slice.shape
        changes.append(_change(test_slice, corrupted))
    # Visible but not destroyed: between half a level and a quarter of the range on average.
    assert all(0.5 < change < 64 for change in changes), changes
    if name not in NOT_GROWING:
        assert changes[-1] > changes[0] * 1.2, changes
    if name in GROWING_EVERY_STEP:
        assert all(later > earlier * 0.97 for earlier, later in zip(changes, changes[1:])), changes


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_each_corruption_is_deterministic_for_a_seed_and_random_ones_change_with_it(name, test_slice):
    images = test_slice[:16]
    first = corrupt(images, name, 3, seed=0)
    assert torch.equal(first, corrupt(images, name, 3, seed=0))
    other = corrupt(images, name, 3, seed=1)
    if name in DETERMINISTIC:
        assert torch.equal(first, other)
    else:
        assert not torch.equal(first, other)


def test_noise_has_the_published_strength_on_a_grey_image():
    grey = torch.full((16, 3, 32, 32), 128, dtype=torch.uint8)
    for severity in (1, 5):
        noisy = corrupt(grey, "gaussian_noise", severity).float()
        assert noisy.std().item() == pytest.approx(GAUSSIAN_NOISE[severity - 1] * 255, rel=0.08)
        photons = SHOT_NOISE[severity - 1]
        shot = corrupt(grey, "shot_noise", severity).float()
        assert shot.std().item() == pytest.approx((128 / 255 / photons) ** 0.5 * 255, rel=0.08)
        impulses = corrupt(grey, "impulse_noise", severity)
        hit = (impulses != 128).float().mean().item()
        assert hit == pytest.approx(IMPULSE_NOISE[severity - 1], rel=0.25)
        assert set(impulses[impulses != 128].unique().tolist()) <= {0, 255}


def test_contrast_pulls_each_channel_to_its_mean(test_slice):
    images = test_slice[:8]
    expected = (images.float() / 255 - images.float().mean((2, 3), keepdim=True) / 255) * CONTRAST[4]
    expected = torch.floor(((expected + images.float().mean((2, 3), keepdim=True) / 255).clamp(0, 1)) * 255 + 1e-3)
    assert (corrupt(images, "contrast", 5).float() - expected).abs().max() <= 1


@pytest.mark.parametrize("name, severity", [("brightness", 2), ("saturate", 1), ("saturate", 5)])
def test_hsv_corruptions_match_a_pixelwise_hsv_round_trip(name, severity, test_slice):
    images = test_slice[:4]
    pixels = images.permute(0, 2, 3, 1).reshape(-1, 3).double().div(255).tolist()
    expected = []
    for r, g, b in pixels:
        h, s, v = colorsys.rgb_to_hsv(r, g, b)
        if name == "brightness":
            v = min(max(v + BRIGHTNESS[severity - 1], 0.0), 1.0)
        else:
            factor, shift = SATURATE[severity - 1]
            s = min(max(s * factor + shift, 0.0), 1.0)
        expected.append(colorsys.hsv_to_rgb(h, s, v))
    expected = np.floor(np.clip(np.array(expected), 0, 1) * 255 + 1e-3)
    got = corrupt(images, name, severity).permute(0, 2, 3, 1).reshape(-1, 3).numpy()
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1


def test_blurs_match_scipy(test_slice):
    ndimage = pytest.importorskip("scipy.ndimage")
    images = test_slice[:4]
    pixels = images.permute(0, 2, 3, 1).double().numpy() / 255
    blurred = np.stack([ndimage.gaussian_filter(image, sigma=(0.8, 0.8, 0), mode="nearest") for image in pixels])
    expected = np.floor(np.clip(blurred, 0, 1) * 255 + 1e-3)
    got = corrupt(images, "gaussian_blur", 4).permute(0, 2, 3, 1).numpy()
    assert np.abs(got.astype(int) - expected.astype(int)).max() <= 1
    # One centre zoom, against scipy's zoom of the centre window cropped back.
    image = pixels[0]
    window = image[1:31, 1:31]  # ceil(32 / 1.07) = 30
    zoomed = ndimage.zoom(window, (1.07, 1.07, 1), order=1)
    trim = (zoomed.shape[0] - 32) // 2
    expected_zoom = zoomed[trim:trim + 32, trim:trim + 32]
    got_zoom = filters.clipped_zoom(torch.from_numpy(image).permute(2, 0, 1)[None].float(), 1.07)
    assert np.abs(got_zoom[0].permute(1, 2, 0).numpy() - expected_zoom).max() < 1e-5


def test_motion_blur_streaks_a_point_along_the_angle_with_falling_weights():
    point = torch.zeros(2, 1, 32, 32)
    point[:, :, 16, 20] = 1.0
    streaks = filters.motion_blur(point, radius=6, sigma=2.0, angles_degrees=torch.tensor([0.0, 90.0]))
    # Tap i reads i pixels along the angle, so a point spreads i pixels against it.
    horizontal = streaks[0, 0, 16, 7:21]
    assert torch.count_nonzero(streaks[0]) == 13 and torch.all(horizontal[1:] > 0)
    assert torch.all(horizontal[1:].diff() > 0)  # nearest the point weighs most
    vertical = streaks[1, 0, 3:17, 20]
    assert torch.count_nonzero(streaks[1]) == 13 and torch.allclose(vertical, horizontal)
    assert streaks.sum(dim=(1, 2, 3)).allclose(torch.ones(2))


def test_corrupt_refuses_bad_input_with_the_fix(test_slice):
    with pytest.raises(CifarlabError, match="unknown corruption 'haze'"):
        corrupt(test_slice, "haze", 1)
    with pytest.raises(CifarlabError, match="severity 6"):
        corrupt(test_slice, "fog", 6)
    with pytest.raises(CifarlabError, match="uint8"):
        corrupt(test_slice.float(), "fog", 1)
    with pytest.raises(CifarlabError, match="resize the images to 32x32"):
        corrupt(torch.zeros(2, 3, 64, 64, dtype=torch.uint8), "fog", 1)
