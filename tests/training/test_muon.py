import pytest
import torch
from torch import nn

from cifarlab.config.recipe import OptimConfig
from cifarlab.runner.run import run_recipe
from cifarlab.runs.checkpoint import load_checkpoint
from cifarlab.training.muon import Muon, orthogonalise
from cifarlab.training.optim import build_optimizer, set_lr


@pytest.mark.parametrize("shape", [(16, 72), (72, 16), (32, 32)])
def test_orthogonalise_brings_every_singular_value_near_one(shape):
    torch.manual_seed(0)
    # A badly conditioned matrix: singular values spread over four orders of magnitude.
    u, _ = torch.linalg.qr(torch.randn(shape[0], shape[0]))
    v, _ = torch.linalg.qr(torch.randn(shape[1], shape[1]))
    rank = min(shape)
    matrix = u[:, :rank] @ torch.diag(torch.logspace(-2, 2, rank)) @ v[:, :rank].T
    singular = torch.linalg.svdvals(orthogonalise(matrix, steps=5))
    before = torch.linalg.svdvals(matrix)
    assert before.max() / before.min() > 1e3
    # The quintic iteration trades exactness for speed: singular values land near 1, not on it.
    assert singular.max() < 1.3 and singular[: rank // 2].min() > 0.6
    assert orthogonalise(matrix).shape == matrix.shape


def _conv_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Linear(8, 4))


def test_muon_orthogonalises_only_the_conv_filters_and_sgd_steps_the_rest():
    model = _conv_model()
    opt = build_optimizer(model, OptimConfig(name="muon", lr=0.1, momentum=0.9, nesterov=True, muon_lr_scale=0.5,
                                             muon_momentum=0.6, weight_decay=0.0), 0.1)
    assert isinstance(opt, Muon)
    muon_params = [p for g in opt.param_groups if g["muon"] for p in g["params"]]
    assert [tuple(p.shape) for p in muon_params] == [(8, 3, 3, 3)]
    set_lr(opt, 0.1)
    assert {g["lr"] for g in opt.param_groups if g["muon"]} == {0.05}
    conv, head = model[0].weight, model[5].weight
    before = {"conv": conv.detach().clone(), "head": head.detach().clone()}
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 4, (16,))
    nn.functional.cross_entropy(model(x), y).backward()
    head_grad = head.grad.clone()
    opt.step()
    # Nesterov SGD with an empty buffer: the first step is lr x (1 + momentum) x gradient.
    assert torch.allclose(head - before["head"], -0.1 * 1.9 * head_grad, atol=1e-7)
    # The filters: rescaled to norm sqrt(8), then an orthogonal step of size lr x 0.5.
    normalised = before["conv"] * (8 ** 0.5 / before["conv"].norm())
    step = ((conv.detach() - normalised) / -0.05).reshape(8, -1)
    assert torch.linalg.svdvals(step).min() > 0.5 and torch.linalg.svdvals(step).max() < 1.5


def test_muon_lowers_the_training_loss():
    model = _conv_model()
    opt = build_optimizer(model, OptimConfig(name="muon", lr=0.05, muon_lr_scale=0.5, weight_decay=1e-4), 0.05)
    torch.manual_seed(1)
    # A learnable rule: the class is the signs of the first two channels' means.
    x = torch.randn(64, 3, 8, 8) + torch.randn(64, 3, 1, 1)
    y = (x[:, 0].mean((1, 2)) > 0).long() * 2 + (x[:, 1].mean((1, 2)) > 0).long()
    losses = []
    for _ in range(60):
        loss = nn.functional.cross_entropy(model(x), y)
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.slow
def test_a_stopped_and_resumed_muon_run_ends_with_bitwise_identical_weights(tiny_recipe):
    recipe = tiny_recipe(optim={"name": "muon", "lr": 0.05, "muon_lr_scale": 2.0})
    straight = run_recipe(recipe)
    stopped = run_recipe(recipe.__class__(**{**vars(recipe), "name": "stopped"}), stop_after=4)
    assert stopped.status == "stopped"
    resumed = run_recipe(recipe, resume=stopped.run_dir)
    a, b = load_checkpoint(straight.run_dir / "last.pt"), load_checkpoint(resumed.run_dir / "last.pt")
    assert all(torch.equal(a["model"][key], b["model"][key]) for key in a["model"])
    assert any(g["muon"] for g in a["optimizer"]["param_groups"])
