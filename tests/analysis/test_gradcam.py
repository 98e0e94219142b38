"""Grad-CAM and Grad-CAM++: maps find a planted object, per-image batching, layer choice, the explain verb."""

import pytest
import torch
from torch import nn

from cifarlab.analysis import explain_run, gradcam, target_layer_name
from cifarlab.analysis.target_layer import traced_target_layer
from cifarlab.cli import main
from cifarlab.errors import CifarlabError
from cifarlab.evaluation.preprocessing import preprocess
from cifarlab.models import create

SIDE, SQUARE = 32, 8
MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


def planted_squares(count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Dim noise images, half of them with a bright square at a random place: (images, labels, corners).

    The label says whether the square is there; corners are its top-left (row, column), -1 if absent.
    """
    images = torch.randint(0, 120, (count, 3, SIDE, SIDE), generator=generator, dtype=torch.uint8)
    labels = torch.arange(count) % 2
    corners = torch.randint(0, SIDE - SQUARE + 1, (count, 2), generator=generator)
    corners[labels == 0] = -1
    for index in torch.nonzero(labels).flatten().tolist():
        top, left = corners[index].tolist()
        images[index, :, top : top + SQUARE, left : left + SQUARE] = 255
    return images, labels, corners


class SquareFinder(nn.Module):
    """A tiny CNN that can only answer "is there a square" by detecting it somewhere (global pooling)."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 2))

    def forward(self, x):
        return self.head(self.features(x))


@pytest.fixture(scope="module")
def square_finder():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = SquareFinder()
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    mean, std = torch.tensor(MEAN), torch.tensor(STD)
    for _ in range(150):
        images, labels, _ = planted_squares(32, generator)
        loss = nn.functional.cross_entropy(model(preprocess(images, mean, std)), labels)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    images, labels, corners = planted_squares(64, torch.Generator().manual_seed(1))
    with torch.no_grad():
        accuracy = (model(preprocess(images, mean, std)).argmax(1) == labels).float().mean().item()
    assert accuracy > 0.9, f"the square finder did not learn its task (accuracy {accuracy:.2f})"
    return model, images[labels == 1], corners[labels == 1]


def _share_peaking_on_square(maps: torch.Tensor, corners: torch.Tensor, slack: int = 2) -> float:
    peaks = maps.flatten(1).argmax(dim=1)
    rows, columns = peaks // SIDE, peaks % SIDE
    top, left = corners[:, 0], corners[:, 1]
    inside = ((rows >= top - slack) & (rows < top + SQUARE + slack)
              & (columns >= left - slack) & (columns < left + SQUARE + slack))
    return inside.float().mean().item()


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_maps_peak_on_the_planted_square(square_finder, method):
    model, images, corners = square_finder
    maps = gradcam(model, images, method, targets=torch.ones(len(images), dtype=torch.long), mean=MEAN, std=STD)
    assert maps.shape == (len(images), SIDE, SIDE)
    assert maps.min() >= 0 and maps.max() <= 1
    assert _share_peaking_on_square(maps, corners) >= 0.9
    # The same maps, shifted by a random amount, would not peak on the squares: the check can fail.
    shifted = torch.roll(maps, shifts=(SIDE // 2, SIDE // 2), dims=(1, 2))
    assert _share_peaking_on_square(shifted, corners) < 0.5


def test_maps_of_a_batch_equal_maps_of_each_image_alone(square_finder):
    model, images, _ = square_finder
    together = gradcam(model, images[:6], "gradcam++", mean=MEAN, std=STD, batch_size=6)
    alone = torch.cat([gradcam(model, images[i : i + 1], "gradcam++", mean=MEAN, std=STD) for i in range(6)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=0)


def test_gradcam_matches_a_direct_computation(square_finder):
    model, images, _ = square_finder
    x = preprocess(images[:4], torch.tensor(MEAN), torch.tensor(STD)).requires_grad_(True)
    activations = model.features(x)
    score = model.head(activations)[:, 1].sum()
    (gradients,) = torch.autograd.grad(score, activations)
    raw = torch.relu((gradients.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1)).detach()
    raw = nn.functional.interpolate(raw[:, None], size=(SIDE, SIDE), mode="bilinear", align_corners=False)[:, 0]
    low = raw.flatten(1).min(1).values.view(-1, 1, 1)
    expected = (raw - low) / (raw.flatten(1).max(1).values.view(-1, 1, 1) - low)
    maps = gradcam(model, images[:4], "gradcam", target_layer="features", targets=[1, 1, 1, 1], mean=MEAN, std=STD)
    torch.testing.assert_close(maps, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("name, layer", [("resnet18", "stages"), ("wrn_16_8", "final"), ("lenet", "features"),
                                         ("vgg11_bn", "features.27")])
def test_default_layer_is_the_last_spatial_feature_map(name, layer):
    torch.manual_seed(0)
    model = create(name, num_classes=10).eval()
    example = torch.randn(1, 3, 32, 32)
    assert target_layer_name(model, example) == layer
    assert traced_target_layer(model, example) == layer  # the family table agrees with tracing


def test_bit_maps_are_upsampled_from_its_own_input_size():
    torch.manual_seed(0)
    model = create("bit_resnetv2", num_classes=10, depths=(1, 1, 1, 1), width=0.5).eval()
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8)
    maps = gradcam(model, images, resize=128)  # BiT's own mean/std from its input_config
    assert maps.shape == (3, 32, 32) and maps.max() <= 1


def test_timm_model_gets_its_last_stage():
    timm = pytest.importorskip("timm")
    model = timm.create_model("resnet10t", pretrained=False, num_classes=10).eval()
    assert target_layer_name(model, torch.randn(1, 3, 32, 32)) == "layer4"
    maps = gradcam(model, torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8), mean=MEAN, std=STD)
    assert maps.shape == (2, 32, 32)


def test_bad_arguments_name_the_fix():
    model = create("lenet", num_classes=10)
    images = torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8)
    with pytest.raises(CifarlabError, match="no layer 'nope'"):
        gradcam(model, images, target_layer="nope", mean=MEAN, std=STD)
    with pytest.raises(CifarlabError, match="pass mean= and std="):
        gradcam(model, images)
    with pytest.raises(CifarlabError, match="unknown Grad-CAM method"):
        gradcam(model, images, "scorecam", mean=MEAN, std=STD)
    with pytest.raises(CifarlabError, match="give one class per image"):
        gradcam(model, images, targets=[1], mean=MEAN, std=STD)


@pytest.mark.slow
def test_explain_verb_draws_a_gallery_of_a_real_run(tiny_runs, tmp_path, capsys):
    out = tmp_path / "cams.png"
    assert main(["explain", str(tiny_runs[1]), "--method", "gradcam++", "--images", "3", "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "at layer features" in capsys.readouterr().out


def test_explain_draws_only_the_named_classes_in_a_seeded_order(tiny_runs, tmp_path):
    from cifarlab.analysis.explain import split_images
    from cifarlab.runs import load_run

    first = explain_run(tiny_runs[1], tmp_path / "a.png", count=4, classes=["cat", "dog"], seed=3)
    again = explain_run(tiny_runs[1], tmp_path / "b.png", count=4, classes=["cat", "dog"], seed=3)
    assert first.correct + first.misclassified == again.correct + again.misclassified
    _, labels = split_images(load_run(tiny_runs[1]))
    shown = labels[first.correct + first.misclassified].tolist()
    assert shown and set(shown) <= {3, 5}  # cat, dog
    other = explain_run(tiny_runs[1], tmp_path / "c.png", count=4, classes=["cat", "dog"], seed=4)
    assert other.correct + other.misclassified != first.correct + first.misclassified


@pytest.mark.slow
def test_explain_of_a_run_trained_with_clahe_shows_the_model_equalised_images(clahe_run, tmp_path, monkeypatch):
    from cifarlab.analysis import explain
    from cifarlab.runs import load_run
    from tests.conftest import equalise_by_hand

    run = load_run(clahe_run)
    seen = []  # every batch the model is given: the scan for examples first, Grad-CAM's batch last
    run.model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    monkeypatch.setattr(explain, "load_run", lambda path: run)
    shown = explain.explain_run(clahe_run, tmp_path / "cams.png", count=2, seed=1, device="cpu")
    images, _ = explain.split_images(run)

    def normalised(picked):
        return preprocess(equalise_by_hand(picked), torch.tensor(run.mean), torch.tensor(run.std))

    order = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(seen[0], normalised(images[order[: explain.SCAN_BATCH]]))
    torch.testing.assert_close(seen[-1], normalised(images[shown.correct + shown.misclassified]))


def test_explain_refuses_an_unknown_class(tiny_runs, tmp_path, capsys):
    assert main(["explain", str(tiny_runs[1]), "--classes", "unicorn", "--out", str(tmp_path / "x.png")]) == 2
    assert "unknown class names ['unicorn']" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("count", [0, 101])
def test_explain_refuses_an_image_count_no_figure_can_hold(tiny_runs, tmp_path, capsys, count):
    assert main(["explain", str(tiny_runs[1]), "--images", str(count), "--out", str(tmp_path / "x.png")]) == 2
    assert f"--images {count}: show 1 to 100 images per group" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_finding_the_layer_leaves_batchnorm_statistics_and_modes_alone():
    torch.manual_seed(0)
    model = create("vgg11_bn", num_classes=10).train()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    traced_target_layer(model, torch.randn(4, 3, 32, 32))
    gradcam(model, torch.randint(0, 256, (2, 3, 32, 32), dtype=torch.uint8), mean=MEAN, std=STD)
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())
    assert model.training and all(module.training for module in model.modules())
