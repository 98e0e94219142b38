"""Loss landscapes: filter normalisation, slices around the weights, interpolation ends, the landscape verb."""

import numpy as np
import pytest
import torch
from torch import nn

from cifarlab.analysis import normalise_filters, random_direction, slice_surface
from cifarlab.analysis.explain import split_images
from cifarlab.analysis.landscape import Endpoint, interpolate, score
from cifarlab.cli import main
from cifarlab.evaluation import EvalSettings, Preprocessing, score_split
from cifarlab.runs import load_run


def small_bn_network() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                          nn.Linear(24, 5))
    with torch.no_grad():  # running statistics unlike the defaults, so that they matter
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
    return model.eval()


def test_each_direction_filter_has_its_weight_filters_norm():
    model = small_bn_network()
    direction = random_direction(model, torch.Generator().manual_seed(0))
    for name, weight in model.named_parameters():
        values = direction[name]
        if weight.ndim <= 1:  # biases and BatchNorm scales and shifts stay where they are
            assert torch.count_nonzero(values) == 0, name
            continue
        torch.testing.assert_close(values.flatten(1).norm(dim=1), weight.detach().flatten(1).norm(dim=1))
        assert not torch.allclose(values, weight.detach())  # a random direction, not the weights themselves


def test_filter_normalisation_rescales_whole_filters_only():
    weights = {"conv": torch.tensor([[3.0, 4.0], [0.0, 1.0]]), "bias": torch.tensor([1.0, 2.0])}
    direction = {"conv": torch.tensor([[1.0, 0.0], [2.0, 2.0]]), "bias": torch.tensor([5.0, 5.0])}
    normalised = normalise_filters(direction, weights)
    torch.testing.assert_close(normalised["conv"], torch.tensor([[5.0, 0.0], [0.5**0.5, 0.5**0.5]]))
    torch.testing.assert_close(normalised["bias"], torch.zeros(2))


def test_a_slice_passes_through_the_weights_and_puts_them_back():
    model = small_bn_network()
    inputs, labels = torch.randn(40, 3, 8, 8), torch.randint(0, 5, (40,))
    before = {name: value.clone() for name, value in model.state_dict().items()}
    generator = torch.Generator().manual_seed(1)
    directions = [random_direction(model, generator) for _ in range(2)]
    loss, accuracy = slice_surface(model, directions, torch.linspace(-1, 1, 3), inputs, labels)
    assert loss.shape == accuracy.shape == (3, 3)
    own_loss, own_accuracy = score(model, inputs, labels)
    assert loss[1, 1].item() == pytest.approx(own_loss) and accuracy[1, 1].item() == own_accuracy
    assert loss[0, 0] != loss[1, 1]  # the directions do move the weights
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]), name


def test_interpolation_ends_are_the_two_models_running_statistics_included():
    first, second = small_bn_network(), small_bn_network()
    with torch.no_grad():
        for parameter in second.parameters():
            parameter.add_(torch.randn_like(parameter))
        second[1].running_var.mul_(3.0)
    pixels, labels = torch.rand(30, 3, 8, 8), torch.randint(0, 5, (30,))
    means, stds = ((0.4, 0.5, 0.6), (0.5, 0.5, 0.5)), ((0.2, 0.25, 0.3), (0.3, 0.3, 0.3))
    ends = [Endpoint({k: v.clone() for k, v in model.state_dict().items()}, mean, std)
            for model, mean, std in zip((first, second), means, stds)]
    loss, _ = interpolate(first, ends[0], ends[1], torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64), pixels, labels)
    for index, (model, mean, std) in zip((0, 2), zip((small_bn_network(), second), means, stds)):
        inputs = (pixels - torch.tensor(mean).view(1, -1, 1, 1)) / torch.tensor(std).view(1, -1, 1, 1)
        assert loss[index].item() == pytest.approx(score(model, inputs, labels)[0], rel=1e-6)


def _own_loss(run_dir, indices) -> float:
    run = load_run(run_dir)
    images, labels = split_images(run)
    evaluation = score_split(run.model, images[indices], labels[indices], run.classes, EvalSettings(Preprocessing(run.mean, run.std)))
    return evaluation.summary["loss"]


def test_between_two_real_runs_the_ends_reproduce_each_runs_own_loss(tiny_runs, tmp_path):
    slow, fast = tiny_runs
    out = tmp_path / "line"
    assert main(["landscape", "--between", str(slow), str(fast), "--points", "5", "--images", "200",
                 "--out", str(out)]) == 0
    arrays = np.load(out / "interpolation.npz")
    alpha, loss = arrays["alpha"], arrays["loss"]
    assert alpha.min() == -0.5 and alpha.max() == 1.5 and {0.0, 1.0} <= set(alpha.tolist())
    indices = torch.from_numpy(arrays["indices"])
    assert len(indices) == 200
    assert loss[alpha == 0.0][0] == pytest.approx(_own_loss(slow, indices), rel=1e-5)
    assert loss[alpha == 1.0][0] == pytest.approx(_own_loss(fast, indices), rel=1e-5)
    assert (out / "interpolation.png").stat().st_size > 0


def test_landscape_verb_writes_slices_of_a_real_run(tiny_runs, tmp_path, capsys):
    run_dir = tiny_runs[1]
    out = tmp_path / "surface"
    assert main(["landscape", str(run_dir), "--dims", "2", "--points", "3", "--images", "50",
                 "--out", str(out)]) == 0
    arrays = np.load(out / "landscape.npz")
    assert arrays["loss"].shape == arrays["accuracy"].shape == (3, 3)
    assert arrays["coordinates"].tolist() == [-1.0, 0.0, 1.0]
    assert arrays["loss"][1, 1] == pytest.approx(_own_loss(run_dir, torch.from_numpy(arrays["indices"])), rel=1e-5)
    for name in ("landscape_contour.png", "landscape_surface.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert main(["landscape", str(run_dir), "--dims", "1", "--points", "3", "--images", "50", "--range", "0.5",
                 "--out", str(out)]) == 0
    assert np.load(out / "landscape.npz")["loss"].shape == (3,)
    assert (out / "landscape_1d.png").is_file()
    assert capsys.readouterr().out.count("wrote:") == 5


def test_landscape_verb_refuses_mixed_or_missing_runs(tiny_runs, capsys):
    assert main(["landscape", str(tiny_runs[0]), "--between", str(tiny_runs[0]), str(tiny_runs[1])]) == 2
    assert "--between RUN_A RUN_B draws the line" in capsys.readouterr().err
    assert main(["landscape"]) == 2
    assert "give a run folder to slice" in capsys.readouterr().err


@pytest.mark.parametrize("between", [False, True])
def test_a_batch_size_below_one_is_one_message_and_writes_nothing(tiny_runs, tmp_path, capsys, between):
    runs = ["--between", str(tiny_runs[0]), str(tiny_runs[1])] if between else [str(tiny_runs[0])]
    assert main(["landscape", *runs, "--batch-size", "0", "--out", str(tmp_path / "l")]) == 2
    assert "--batch-size 0: evaluate at least 1 image per forward pass" in capsys.readouterr().err
    assert not (tmp_path / "l").exists()


@pytest.mark.parametrize("between", [False, True])
def test_a_plot_that_cannot_be_written_leaves_no_partial_folder(tiny_runs, tmp_path, capsys, monkeypatch, between):
    import cifarlab.analysis.landscape_study as study
    from cifarlab.errors import CifarlabError

    def disk_full(*args, **kwargs):  # the last file of the set fails, after landscape.npz was written
        raise CifarlabError("cannot write the plot (No space left on device): the disk is full")

    monkeypatch.setattr(study, "plot_curve", disk_full)
    runs = ["--between", str(tiny_runs[0]), str(tiny_runs[1])] if between else [str(tiny_runs[0]), "--dims", "1"]
    out = tmp_path / "l"
    assert main(["landscape", *runs, "--points", "3", "--images", "20", "--out", str(out)]) == 2
    assert "the disk is full" in capsys.readouterr().err
    assert not out.exists()
