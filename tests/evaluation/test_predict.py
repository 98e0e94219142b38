"""predict: batching, preprocessing, eval mode, TTA wiring and input checks."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cifarlab.data.equalise import Clahe
from cifarlab.errors import CifarlabError
from cifarlab.evaluation import EvalSettings, Preprocessing
from cifarlab.evaluation.predict import predict

MEAN, STD = (0.4, 0.5, 0.6), (0.2, 0.25, 0.3)


def _settings(mean=MEAN, std=STD, resize=None, crop=None, clahe=None, **options) -> EvalSettings:
    return EvalSettings(Preprocessing(mean, std, resize=resize, crop=crop, clahe=clahe), **options)


class Probe(nn.Module):
    """Pixel-linear classifier that records each input batch and the mode it ran in."""

    def __init__(self, pixels, classes=5):
        super().__init__()
        self.head = nn.Linear(pixels, classes)
        self.norm = nn.BatchNorm1d(classes)
        self.inputs, self.modes = [], []

    def forward(self, x):
        self.inputs.append(x.clone())
        self.modes.append(self.training)
        return self.norm(self.head(x.flatten(1)))


def _images(n, h=8, w=10, seed=0):
    return torch.randint(0, 256, (n, 3, h, w), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def _normalise(images):
    x = images.float() / 255
    return (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)


def test_uneven_last_batch_is_kept_and_rows_stay_in_order():
    images, model = _images(23), Probe(3 * 8 * 10)
    out = predict(model, images, _settings(batch_size=5))
    assert [len(b) for b in model.inputs] == [5, 5, 5, 5, 3]
    model.eval()
    with torch.no_grad():
        expected = model(_normalise(images)).softmax(1)
    torch.testing.assert_close(out, expected)
    assert out.dtype == torch.float32 and out.device.type == "cpu" and not out.requires_grad


def test_runs_in_eval_mode_and_restores_each_submodules_mode():
    model = Probe(3 * 8 * 10)
    model.train()
    model.norm.eval()  # a deliberately frozen norm layer inside a training model
    predict(model, _images(4), _settings())
    assert model.modes == [False]
    assert model.training and model.head.training and not model.norm.training


def test_eval_mode_is_restored_even_when_the_model_fails():
    class Broken(Probe):
        def forward(self, x):
            raise RuntimeError("boom")

    model = Broken(3 * 8 * 10)
    model.train()
    with pytest.raises(RuntimeError):
        predict(model, _images(2), _settings())
    assert model.training


def test_resize_then_centre_crop_then_normalise():
    images = _images(3, h=8, w=10)
    model = Probe(3 * 6 * 6)
    predict(model, images, _settings(resize=(12, 14), crop=6))
    raw = images.float() / 255
    resized = F.interpolate(raw, size=(12, 14), mode="bilinear", align_corners=False, antialias=False)
    top, left = (12 - 6) // 2, (14 - 6) // 2
    cropped = resized[..., top : top + 6, left : left + 6]
    expected = (cropped - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    torch.testing.assert_close(model.inputs[0], expected)


def test_tta_flip_passes_image_and_mirror_through_the_model():
    images, model = _images(4), Probe(3 * 8 * 10)
    predict(model, images, _settings(tta="flip", batch_size=4))
    assert len(model.inputs) == 2
    torch.testing.assert_close(model.inputs[0], _normalise(images))
    torch.testing.assert_close(model.inputs[1], _normalise(images)[..., torch.arange(9, -1, -1)])


def test_channels_last_and_autocast_keep_probabilities_valid():
    model = Probe(3 * 8 * 10)
    out = predict(model, _images(6), _settings(channels_last=True, autocast_dtype=torch.bfloat16))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.sum(1), torch.ones(6), atol=1e-2, rtol=0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(images=torch.zeros(2, 3, 8, 10)), "uint8"),
        (dict(mean=(0.5, 0.5)), "one per channel"),
        (dict(batch_size=0), "batch_size=0 must be at least 1"),
        (dict(tta="rotate"), "shift16"),
        (dict(crop=20), "larger than"),
        (dict(images=torch.zeros(0, 3, 8, 10, dtype=torch.uint8)), "N=0"),
    ],
)
def test_bad_input_raises_a_message_naming_the_fix(kwargs, message):
    args = dict(images=_images(2))
    args.update(kwargs)
    with pytest.raises(CifarlabError, match=message):
        predict(Probe(3 * 8 * 10), args.pop("images"), _settings(**args))


def test_clahe_equalises_each_uint8_batch_before_scaling_resizing_and_normalising():
    images = _images(3, h=16, w=16)
    model = Probe(3 * 8 * 8)
    clahe = Clahe(2.0, 4)
    predict(model, images, _settings(resize=8, clahe=clahe))
    equalised = clahe(images)
    assert not torch.equal(equalised, images)
    resized = F.interpolate(equalised.float() / 255, size=(8, 8), mode="bilinear", align_corners=False, antialias=False)
    expected = (resized - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    torch.testing.assert_close(model.inputs[0], expected)
