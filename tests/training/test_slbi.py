from itertools import pairwise

import pytest
import torch
from torch import nn

from cifarlab.config.recipe import OptimConfig
from cifarlab.runner.run import run_recipe
from cifarlab.runs.checkpoint import load_checkpoint
from cifarlab.training.optim import build_optimizer
from cifarlab.training.slbi import SLBI, group_norms, shrink


def test_shrink_soft_thresholds_conv_filters_by_their_norm_and_linear_weights_one_by_one():
    z = torch.zeros(3, 2, 1, 1)
    z[0, :, 0, 0] = torch.tensor([3.0, 4.0])  # norm 5: scaled by 1 - 2/5
    z[1, :, 0, 0] = torch.tensor([1.0, 1.0])  # norm 1.41 < 2: removed as a whole
    z[2, :, 0, 0] = torch.tensor([0.0, -6.0])  # norm 6: scaled by 1 - 2/6
    filters = shrink(z, 2.0)
    assert torch.allclose(filters[0].flatten(), torch.tensor([1.8, 2.4]))
    assert torch.equal(filters[1], torch.zeros(2, 1, 1))
    assert torch.allclose(filters[2].flatten(), torch.tensor([0.0, -4.0]))
    weights = shrink(torch.tensor([[3.0, -0.5], [-2.5, 1.0]]), 1.0)
    assert torch.equal(weights, torch.tensor([[2.0, 0.0], [-1.5, 0.0]]))
    assert torch.allclose(group_norms(z), torch.tensor([5.0, 2 ** 0.5, 6.0]))


def test_two_steps_follow_the_split_lbi_update_computed_by_hand():
    kappa, mu, lr, threshold = 2.0, 4.0, 0.1, 0.01
    start = torch.tensor([[1.0, -0.5], [0.2, 0.0]])
    slope = torch.tensor([[0.5, 0.5], [-1.0, 1.0]])  # the loss (W * slope).sum() has this gradient everywhere
    weight, bias = nn.Parameter(start.clone()), nn.Parameter(torch.tensor([0.3, -0.3]))
    opt = SLBI([weight, bias], lr=lr, kappa=kappa, mu=mu, threshold=threshold, momentum=0.0)
    w, z, gamma = start.clone(), torch.zeros(2, 2), torch.zeros(2, 2)
    for _ in range(2):
        opt.zero_grad()
        ((weight * slope).sum() + bias.sum()).backward()
        opt.step()
        w, z = w - kappa * lr * (slope + (w - gamma) / mu), z + lr / mu * (w - gamma)
        gamma = kappa * torch.sign(z) * (z.abs() - threshold).clamp_min(0)
        assert torch.allclose(weight.detach(), w) and torch.allclose(opt.state[weight]["z"], z)
        assert torch.allclose(opt.state[weight]["gamma"], gamma)
    assert gamma[0, 0] > 0 and gamma[1, 1] == 0  # the path has started: the large entry is in, a small one not
    assert torch.allclose(bias.detach(), torch.tensor([0.3, -0.3]) - 2 * kappa * lr)  # a plain step, no Gamma
    assert "gamma" not in opt.state[bias]


def _small_convnet() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(4),
                         nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


@pytest.mark.slow
@pytest.mark.parametrize("name,lr,mu,threshold", [("slbi", 0.1, 5.0, 1.0), ("slbi_adam", 0.01, 1.0, 0.1)])
def test_gamma_starts_empty_and_its_support_grows_along_the_path(cifar10, name, lr, mu, threshold):
    torch.manual_seed(0)
    model = _small_convnet()
    x = cifar10.train_images[:256].float() / 255 - 0.5
    y = cifar10.train_labels[:256]
    opt = build_optimizer(model, OptimConfig(name=name, lr=lr, slbi_mu=mu, slbi_lambda=threshold, weight_decay=0.0), lr)
    assert isinstance(opt, SLBI)
    supports = []
    for _ in range(150):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        supports.append(opt.support_size())
    groups = 16 + 16 + 16 * 10  # filters of both convs, entries of the linear weight
    assert supports[0] == 0  # z starts at zero: nothing has passed the threshold after one step
    assert 0 < supports[-1] < groups
    # The path adds groups; a group may leave now and then, but the support keeps growing overall.
    assert supports[-1] > supports[len(supports) // 2] > supports[len(supports) // 4]
    drops = sum(later < earlier for earlier, later in pairwise(supports))
    assert drops <= len(supports) // 10


def test_only_convolution_and_linear_weights_get_a_gamma():
    torch.manual_seed(0)
    model = _small_convnet()
    opt = build_optimizer(model, OptimConfig(name="slbi", lr=0.1), 0.1)
    nn.functional.cross_entropy(model(torch.randn(8, 3, 16, 16)), torch.randint(0, 10, (8,))).backward()
    opt.step()
    with_gamma = {name for name, p in model.named_parameters() if "gamma" in opt.state[p]}
    assert with_gamma == {"0.weight", "4.weight", "9.weight"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["slbi", "slbi_adam"])
def test_a_stopped_and_resumed_slbi_run_ends_with_bitwise_identical_weights_and_gamma(tiny_recipe, name):
    lr = 0.05 if name == "slbi" else 0.01
    recipe = tiny_recipe(optim={"name": name, "lr": lr, "slbi_mu": 1.0, "slbi_lambda": 0.05, "nesterov": False},
                         schedule={"name": "constant"})
    straight = run_recipe(recipe)
    stopped = run_recipe(recipe.__class__(**{**vars(recipe), "name": "stopped"}), stop_after=4)
    assert stopped.status == "stopped"
    resumed = run_recipe(recipe, resume=stopped.run_dir)
    assert resumed.status == "finished"
    a, b = load_checkpoint(straight.run_dir / "last.pt"), load_checkpoint(resumed.run_dir / "last.pt")
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    gammas_a = [s["gamma"] for s in a["optimizer"]["state"].values() if "gamma" in s]
    gammas_b = [s["gamma"] for s in b["optimizer"]["state"].values() if "gamma" in s]
    assert len(gammas_a) == len(gammas_b) > 0
    assert all(torch.equal(g, h) for g, h in zip(gammas_a, gammas_b))
    assert any(g.abs().sum() > 0 for g in gammas_a)  # the path has started, so the comparison means something
