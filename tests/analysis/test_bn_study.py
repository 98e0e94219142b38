"""The BatchNorm study's numbers against a direct computation, its probe as a Trainer callback, and
`cifarlab study bn` on a CIFAR-10 slice."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from cifarlab.analysis.bn_study import GradientProbe, probe_training
from cifarlab.cli import main
from cifarlab.config import recipe_from_dict
from cifarlab.data.pipeline import Batch
from cifarlab.errors import CifarlabError
from cifarlab.training.callbacks import Callback
from cifarlab.training.distributed import Placement
from cifarlab.training.loop import FixedBatches, Trainer

LR = 0.1
STEP_SIZES = [0.05, 0.3]


def _tiny_net() -> nn.Module:
    torch.manual_seed(0)
    # BatchNorm in training mode makes each image's loss depend on the batch, as in VGG-A-BN.
    return nn.Sequential(nn.Flatten(), nn.Linear(12, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def _recipe(epochs: int = 1):
    """Plain SGD at LR (no momentum, no weight decay), as the direct computation trains."""
    return recipe_from_dict({"optim": {"name": "sgd", "lr": LR, "momentum": 0.0, "weight_decay": 0.0},
                             "train": {"epochs": epochs, "batch_size": 16, "device": "cpu"}}, source="test")


def _batches(count: int = 4) -> list[Batch]:
    generator = torch.Generator().manual_seed(1)
    batches = []
    for _ in range(count):
        labels = torch.randint(0, 3, (16,), generator=generator)
        batches.append(Batch(torch.randn(16, 3, 2, 2, generator=generator), labels, labels))
    return batches


def _loss_and_gradient(net: nn.Module, weights: dict, batch: Batch):
    names = list(weights)
    params = {k: v.detach().clone().requires_grad_(True) for k, v in weights.items()}
    loss = F.cross_entropy(functional_call(net, params, (batch.inputs,)), batch.targets)
    gradient = torch.autograd.grad(loss, [params[k] for k in names])
    return float(loss.detach()), dict(zip(names, gradient))


def _distance(a: dict, b: dict) -> float:
    return float(torch.sqrt(sum((a[k] - b[k]).double().square().sum() for k in a)))


def _direct(batches: list[Batch]) -> dict:
    """Plain SGD and the probes, written out with functional calls: w' = w - eta g, g' = grad L(w')."""
    net = _tiny_net().train()
    weights = {k: v.detach().clone() for k, v in net.named_parameters()}
    expected = {"loss": [], "path_loss": [], "change": [], "smoothness": []}
    for batch in batches:
        loss, gradient = _loss_and_gradient(net, weights, batch)
        expected["loss"].append(loss)
        path, change, ratio = [], [], []
        for eta in STEP_SIZES:
            moved = {k: weights[k] - eta * gradient[k] for k in weights}
            loss_there, gradient_there = _loss_and_gradient(net, moved, batch)
            path.append(loss_there)
            change.append(_distance(gradient_there, gradient))
            ratio.append(change[-1] / _distance(moved, weights))
        expected["path_loss"].append(path)
        expected["change"].append(change)
        expected["smoothness"].append(max(ratio))
        weights = {k: weights[k] - LR * gradient[k] for k in weights}
    return expected


def test_the_recorded_landscape_equals_a_direct_computation_of_loss_and_gradients_along_each_step():
    batches = _batches()
    model = _tiny_net()
    trace = probe_training(_recipe(), model, FixedBatches(batches, 3), LR, STEP_SIZES, probe_every=1)
    expected = _direct(batches)
    assert trace.probe_steps.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(trace.loss, expected["loss"], rtol=1e-5)
    np.testing.assert_allclose(trace.path_loss, expected["path_loss"], rtol=1e-5)
    np.testing.assert_allclose(trace.gradient_change, expected["change"], rtol=1e-4)
    np.testing.assert_allclose(trace.smoothness, expected["smoothness"], rtol=1e-4)
    assert (trace.gradient_change > 0).all()  # BatchNorm's batch statistics make the gradient move


def test_probing_every_k_steps_probes_those_steps_and_leaves_the_training_unchanged():
    batches = _batches()
    every_step, every_other = _tiny_net(), _tiny_net()
    dense = probe_training(_recipe(), every_step, FixedBatches(batches, 3), LR, STEP_SIZES, 1)
    sparse = probe_training(_recipe(), every_other, FixedBatches(batches, 3), LR, STEP_SIZES, 2)
    assert sparse.probe_steps.tolist() == [0, 2] and sparse.path_loss.shape == (2, 2)
    np.testing.assert_allclose(sparse.loss, dense.loss, rtol=1e-6)  # probing never touches the trained net
    np.testing.assert_allclose(sparse.path_loss, dense.path_loss[[0, 2]], rtol=1e-6)


def test_a_step_size_that_is_not_positive_is_a_user_error():
    model = _tiny_net()
    with pytest.raises(CifarlabError, match="step sizes"):
        probe_training(_recipe(), model, FixedBatches(_batches(), 3), LR, [0.0], 1)


def _train(probe: GradientProbe | None, batches: list[Batch]) -> nn.Module:
    """Two epochs over `batches` on a Trainer without a run folder, watched by `probe` when given."""
    model = _tiny_net()
    trainer = Trainer(_recipe(epochs=2), model, FixedBatches(batches, 3), None, Placement(torch.device("cpu")),
                      run_dir=None, callbacks=[probe] if probe is not None else [])
    assert trainer.fit() == "finished"
    return model


def test_the_probe_is_a_trainer_callback_recording_every_step_and_one_probe_per_probe_every_steps(tmp_path,
                                                                                                 monkeypatch):
    monkeypatch.chdir(tmp_path)
    batches = _batches(5)
    probe = GradientProbe(STEP_SIZES, probe_every=3, loss_fn=F.cross_entropy)
    assert isinstance(probe, Callback)
    probed = _train(probe, batches)
    trace = probe.trace()
    assert len(trace.loss) == 10  # two epochs of the five fixed batches
    assert trace.probe_steps.tolist() == [0, 3, 6, 9] and trace.path_loss.shape == (4, 2)
    assert (trace.gradient_norm > 0).all() and (trace.gradient_change > 0).all()
    # The second epoch replays the first one's batches, from other weights: a different loss.
    assert trace.loss[5] != trace.loss[0]
    plain = _train(None, batches)
    for a, b in zip(probed.parameters(), plain.parameters()):
        assert torch.equal(a, b)  # the probe only watches: the trained weights are those of an unwatched run
    assert list(tmp_path.iterdir()) == []  # a Trainer without a run folder writes nothing


def test_study_bn_trains_both_nets_from_one_start_per_net_and_writes_arrays_table_and_figures(tmp_path, cifar10):
    out = tmp_path / "bn"
    code = main(["study", "bn", "--lrs", "1e-3", "1e-2", "--epochs", "1", "--probe-every", "2", "--out", str(out),
                 "data.train_limit=200", "data.val_size=100", "train.batch_size=50",
                 "model.options.width_multiplier=0.125"])
    assert code == 0
    for name in ("loss_landscape.png", "gradient_predictiveness.png", "beta_smoothness.png", "bn_study.md", "bn_study.csv"):
        assert (out / name).stat().st_size > 0, name
    arrays = np.load(out / "bn_study.npz")
    assert arrays["models"].tolist() == ["vgg_a", "vgg_a_bn"] and arrays["lrs"].tolist() == [1e-3, 1e-2]
    assert arrays["loss"].shape == (2, 2, 4) and arrays["path_loss"].shape == (2, 2, 2, 3)
    assert arrays["probe_steps"].tolist() == [0, 2]
    # One initialisation per net and the same first batch: every learning rate starts at the same loss...
    np.testing.assert_allclose(arrays["loss"][:, 0, 0], arrays["loss"][:, 1, 0], rtol=1e-6)
    assert arrays["loss"][0, 0, 0] != arrays["loss"][1, 0, 0]  # ...and the two nets are different nets
    assert not np.allclose(arrays["loss"][:, 0, 1:], arrays["loss"][:, 1, 1:])  # then the rates part ways
    assert (arrays["beta_smoothness"] > 0).all()
    assert len((out / "bn_study.md").read_text().splitlines()) == 2 + 4
    assert json.loads((out / "bn_study.json").read_text())["steps"] == 4


def test_study_bn_refuses_reduced_precision_instead_of_ignoring_it(tmp_path, capsys):
    out = tmp_path / "bn"
    assert main(["study", "bn", "--out", str(out), "train.precision=auto"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cifarlab: error:") and "train.precision=fp32" in err and len(err.splitlines()) == 1
    assert not out.exists()
