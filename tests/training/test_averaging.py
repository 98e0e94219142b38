import copy

import pytest
import torch
from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.training.averaging import Lookahead, ModelEMA


def small_net(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 2))


def train_a_little(model: nn.Module, steps: int = 1, seed: int = 1) -> None:
    """Change the weights and the BN running statistics the way training does."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    for _ in range(steps):
        loss = model(torch.randn(8, 3, 8, 8, generator=g)).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


def test_ema_update_is_decay_times_old_plus_one_minus_decay_times_new():
    model = small_net()
    ema = ModelEMA(model, decay=0.9)
    old = [p.detach().clone().double() for p in ema.module.parameters()]
    train_a_little(model)
    ema.update(model)
    for o, e, p in zip(old, ema.module.parameters(), model.parameters()):
        expected = 0.9 * o + 0.1 * p.detach().double()
        assert torch.allclose(e.double(), expected, rtol=1e-6, atol=1e-7)
    # really an average, not a copy (the conv bias before BN gets no gradient, so check the head)
    assert not torch.allclose(ema.module[4].weight, model[4].weight)


def test_ema_copies_batchnorm_statistics_by_default():
    model = small_net()
    ema = ModelEMA(model, decay=0.9)
    train_a_little(model)
    ema.update(model)
    bn_ema, bn = ema.module[1], model[1]
    assert torch.equal(bn_ema.running_mean, bn.running_mean)
    assert torch.equal(bn_ema.running_var, bn.running_var)
    assert bn_ema.num_batches_tracked == bn.num_batches_tracked == 1


def test_ema_can_average_batchnorm_statistics_instead():
    model = small_net()
    ema = ModelEMA(model, decay=0.75, buffers="average")
    old_mean = ema.module[1].running_mean.clone()
    train_a_little(model)
    ema.update(model)
    expected = 0.75 * old_mean + 0.25 * model[1].running_mean
    assert torch.allclose(ema.module[1].running_mean, expected)
    assert ema.module[1].num_batches_tracked == 1  # integer counters are copied


def test_ema_is_its_own_frozen_model_in_eval_mode():
    model = small_net()
    ema = ModelEMA(model, decay=0.5)
    x = torch.randn(2, 3, 8, 8)
    model.eval()
    assert torch.equal(ema(x), model(x))
    assert not ema.module.training
    assert not any(p.requires_grad for p in ema.module.parameters())
    train_a_little(model)
    model.eval()
    assert not torch.equal(ema(x), model(x))  # training the model leaves the copy alone


def test_ema_warmup_uses_a_smaller_decay_early():
    ema = ModelEMA(small_net(), decay=0.999, warmup=True)
    assert ema.current_decay() == pytest.approx(1 / 10)
    ema.update(small_net(1))
    assert ema.current_decay() == pytest.approx(2 / 11)
    assert ModelEMA(small_net(), decay=0.999).current_decay() == 0.999


def test_ema_state_dict_round_trip_resumes_identically():
    model = small_net()
    ema = ModelEMA(model, decay=0.8, warmup=True)
    train_a_little(model)
    ema.update(model)
    resumed = ModelEMA(small_net(5), decay=0.1)
    resumed.load_state_dict(copy.deepcopy(ema.state_dict()))
    assert resumed.updates == 1 and resumed.decay == 0.8 and resumed.warmup
    train_a_little(model, seed=2)
    ema.update(model)
    resumed.update(model)
    for a, b in zip(ema.module.state_dict().values(), resumed.module.state_dict().values()):
        assert torch.equal(a, b)


def test_ema_rejects_a_decay_outside_unit_interval():
    with pytest.raises(CifarlabError, match="decay"):
        ModelEMA(small_net(), decay=1.5)


def test_lookahead_decay_follows_the_cubic_schedule():
    la = Lookahead(small_net(), total_steps=100)
    assert la.decay_at(0) == 0
    assert la.decay_at(50) == pytest.approx(0.95**5 / 8)
    assert la.decay_at(100) == pytest.approx(0.95**5)


def test_lookahead_pulls_the_model_onto_the_slow_weights_every_k_steps():
    model = small_net()
    la = Lookahead(model, total_steps=10, every=5)
    slow_before = {k: v.clone() for k, v in la.slow.items()}
    train_a_little(model)
    after_train = copy.deepcopy(model.state_dict())
    assert not la.step(model, 4)  # not a multiple of 5: nothing happens
    assert all(torch.equal(v, after_train[k]) for k, v in model.state_dict().items())
    assert la.step(model, 5)
    d = 0.95**5 * 0.5**3
    for name, slow in la.slow.items():
        expected = slow_before[name] + (1 - d) * (after_train[name] - slow_before[name])
        assert torch.allclose(slow, expected, atol=1e-6)
        assert torch.equal(model.state_dict()[name], slow)  # the fast weights are reset onto the slow ones
    assert "1.running_mean" in la.slow and "1.num_batches_tracked" not in la.slow


def test_lookahead_finish_puts_the_slow_weights_into_the_model():
    model = small_net()
    la = Lookahead(model, total_steps=10)
    start = copy.deepcopy(model.state_dict())
    train_a_little(model)
    la.finish(model)
    assert all(torch.equal(model.state_dict()[k], start[k]) for k in la.slow)


def test_lookahead_state_dict_round_trip_resumes_identically():
    model = small_net()
    la = Lookahead(model, total_steps=20, every=2)
    train_a_little(model)
    la.step(model, 2)
    twin = copy.deepcopy(model)
    resumed = Lookahead(twin, total_steps=1, every=7)
    resumed.load_state_dict(copy.deepcopy(la.state_dict()))
    for m, lookahead in ((model, la), (twin, resumed)):
        train_a_little(m, seed=3)
        lookahead.step(m, 4)
    for a, b in zip(model.state_dict().values(), twin.state_dict().values()):
        assert torch.equal(a, b)


def test_lookahead_rejects_state_from_another_model():
    la = Lookahead(small_net(), total_steps=5)
    other = Lookahead(nn.Linear(2, 2), total_steps=5)
    with pytest.raises(CifarlabError, match="does not match"):
        la.load_state_dict(other.state_dict())
