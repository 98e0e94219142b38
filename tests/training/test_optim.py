import pytest
import torch
from torch import nn

from cifarlab.config.recipe import OptimConfig
from cifarlab.training.optim import build_optimizer, parameter_groups, peak_lr, set_lr


def _problem():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    return model, x, y


@pytest.mark.parametrize("name,lr,eps,drop", [("sgd", 0.1, 1e-8, 0.8), ("adam", 0.01, 1e-8, 0.8), ("adamw", 0.01, 1e-8, 0.8),
                                              ("adopt", 0.01, 1e-8, 0.8), ("adoptw", 0.01, 1e-8, 0.8),
                                              ("adagrad", 0.1, 1e-8, 0.8), ("adadelta", 1.0, 1e-6, 0.95)])
def test_each_optimiser_lowers_the_training_loss(name, lr, eps, drop):
    # Adadelta starts with steps of about sqrt(eps): it is slow by design, so it gets a looser bound.
    model, x, y = _problem()
    opt = build_optimizer(model, OptimConfig(name=name, lr=lr, eps=eps, weight_decay=1e-4), lr)
    first = None
    for _ in range(100):
        loss = nn.functional.cross_entropy(model(x), y)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < drop * first


def test_norm_and_bias_parameters_can_skip_weight_decay_and_norms_take_a_larger_lr():
    model, _, _ = _problem()
    groups = parameter_groups(model, OptimConfig(weight_decay=5e-4, no_decay_norm_bias=True, bias_lr_scale=64))
    weights, norms, biases = groups
    assert [p.ndim for p in weights["params"]] == [2, 2]
    assert len(norms["params"]) == 2 and len(biases["params"]) == 2
    assert norms["weight_decay"] == biases["weight_decay"] == 0.0
    opt = torch.optim.SGD(groups, lr=1.0)
    set_lr(opt, 0.01)
    assert [g["lr"] for g in opt.param_groups] == [0.01, 0.64, 0.01]


def test_a_larger_norm_lr_keeps_the_decay_per_step():
    model, _, _ = _problem()
    _, norms, biases = parameter_groups(model, OptimConfig(weight_decay=0.64, bias_lr_scale=64))
    assert norms["weight_decay"] * norms["lr_scale"] == pytest.approx(0.64)
    assert biases["weight_decay"] == 0.64


def test_lr_scales_linearly_with_batch_size_on_request():
    assert peak_lr(OptimConfig(lr=0.1, scale_lr_batch=256), 512) == pytest.approx(0.2)
    assert peak_lr(OptimConfig(lr=0.1), 512) == 0.1


def test_sgd_uses_momentum_and_nesterov():
    model, _, _ = _problem()
    opt = build_optimizer(model, OptimConfig(name="sgd", momentum=0.8, nesterov=True), 0.1)
    assert opt.defaults["momentum"] == 0.8 and opt.defaults["nesterov"] is True
