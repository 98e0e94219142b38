import math

import pytest
import torch

from cifarlab.config.recipe import ScheduleConfig
from cifarlab.training.schedule import LrSchedule


def _torch_curve(scheduler_factory, steps, lr=0.1, per_epoch=None):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    sched = scheduler_factory(opt)
    out = []
    for step in range(steps):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if per_epoch is None or (step + 1) % per_epoch == 0:
            sched.step()
    return out


@pytest.mark.parametrize("anneal", ["linear", "cos"])
def test_onecycle_matches_torch_onecycle_per_step(anneal):
    spe, epochs, peak = 10, 24, 5
    cfg = ScheduleConfig(name="onecycle", peak_epoch=peak, anneal=anneal, div_factor=10, final_div_factor=100)
    ours = [LrSchedule(cfg, 0.05, spe * epochs, spe).lr_at(s) for s in range(spe * epochs)]
    ref = _torch_curve(lambda o: torch.optim.lr_scheduler.OneCycleLR(
        o, max_lr=0.05, total_steps=spe * epochs, pct_start=peak / epochs, anneal_strategy=anneal,
        div_factor=10, final_div_factor=100, cycle_momentum=False), spe * epochs)
    assert ours == pytest.approx(ref, rel=1e-9, abs=1e-12)
    assert max(ours) == pytest.approx(0.05) and ours.index(max(ours)) == peak * spe - 1


def test_step_and_multistep_match_torch_per_epoch():
    spe, epochs = 7, 12
    step = LrSchedule(ScheduleConfig(name="step", step_size=4, gamma=0.5), 0.1, spe * epochs, spe)
    ref = _torch_curve(lambda o: torch.optim.lr_scheduler.StepLR(o, 4, 0.5), spe * epochs, per_epoch=spe)
    assert [step.lr_at(s) for s in range(spe * epochs)] == pytest.approx(ref)
    multi = LrSchedule(ScheduleConfig(name="multistep", milestones=[3, 8], gamma=0.1), 0.1, spe * epochs, spe)
    ref = _torch_curve(lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [3, 8], 0.1), spe * epochs, per_epoch=spe)
    assert [multi.lr_at(s) for s in range(spe * epochs)] == pytest.approx(ref)


def test_warmup_cosine_rises_linearly_then_follows_half_cosine_to_min_lr():
    spe, total = 10, 100
    s = LrSchedule(ScheduleConfig(name="cosine", warmup_epochs=2, min_lr=0.001), 0.1, total, spe)
    lrs = [s.lr_at(i) for i in range(total)]
    assert lrs[:20] == pytest.approx([0.1 * (i + 1) / 20 for i in range(20)])
    for i in range(20, total):
        frac = (i - 20) / 80
        assert lrs[i] == pytest.approx(0.001 + (0.1 - 0.001) * (1 + math.cos(math.pi * frac)) / 2)
    assert all(a >= b for a, b in zip(lrs[20:], lrs[21:]))


def test_constant_schedule_is_constant_after_warmup():
    s = LrSchedule(ScheduleConfig(name="constant", warmup_epochs=1), 0.3, 50, 10)
    assert [s.lr_at(i) for i in range(10)] == pytest.approx([0.03 * (i + 1) for i in range(10)])
    assert {s.lr_at(i) for i in range(10, 50)} == {0.3}


def test_plateau_decays_after_patience_epochs_without_improvement_and_resumes():
    s = LrSchedule(ScheduleConfig(name="plateau", factor=0.5, patience=2), 0.1, 100, 10)
    for loss in [1.0, 0.9, 0.95, 0.95]:
        s.on_validation(loss)
    assert s.lr_at(50) == pytest.approx(0.1)  # two bad epochs: not yet
    s.on_validation(0.95)
    assert s.lr_at(50) == pytest.approx(0.05)
    saved = s.state_dict()
    other = LrSchedule(ScheduleConfig(name="plateau", factor=0.5, patience=2), 0.1, 100, 10)
    other.load_state_dict(saved)
    for sched in (s, other):
        for loss in [0.95, 0.95, 0.95]:
            sched.on_validation(loss)
    assert s.lr_at(0) == other.lr_at(0) == pytest.approx(0.025)


def test_hyperrule_schedule_warms_up_then_divides_by_ten_at_each_boundary():
    s = LrSchedule(ScheduleConfig(name="hyperrule"), 0.003, 500, 1, boundaries=[100, 200, 300, 400, 500])
    assert s.lr_at(0) == 0 and s.lr_at(50) == pytest.approx(0.0015)
    # As the published rule: each decay takes effect on the step after its boundary.
    assert [s.lr_at(i) for i in (100, 200, 201, 301, 499)] == pytest.approx([0.003, 0.003, 0.0003, 0.00003, 0.000003])


def test_piecewise_schedule_gives_the_published_hyperrule_floats():
    from cifarlab.transfer.hyperrule import hyperrule

    rule = hyperrule(1000, 32, batch_size=512)
    s = LrSchedule(ScheduleConfig(name="piecewise"), 1.0, 500, 1, boundaries=list(rule.boundaries))
    assert [s.lr_at(step) * rule.lr for step in range(500)] == pytest.approx([rule.lr_at(step) for step in range(500)], rel=1e-12)


@pytest.mark.parametrize("name", ["cosine", "constant", "step", "multistep", "plateau"])
def test_warmup_from_the_default_start_of_zero_gives_the_same_floats_as_before(name):
    s = LrSchedule(ScheduleConfig(name=name, warmup_epochs=2), 0.1, 100, 10)
    assert ScheduleConfig().warmup_start_lr == 0.0
    assert [s.lr_at(i) for i in range(20)] == [0.1 * ((i + 1) / 20) for i in range(20)]  # exactly, not approx


@pytest.mark.parametrize("name", ["cosine", "constant", "multistep"])
def test_warmup_rises_linearly_from_warmup_start_lr_to_the_peak(name):
    cfg = ScheduleConfig(name=name, warmup_epochs=2, warmup_start_lr=1e-5, milestones=[50])
    s = LrSchedule(cfg, 5e-4, 100, 10)
    lrs = [s.lr_at(i) for i in range(20)]
    # start + (peak - start) * (step + 1) / warmup steps: the first step already one increment above the start.
    assert lrs == pytest.approx([1e-5 + (5e-4 - 1e-5) * (i + 1) / 20 for i in range(20)], rel=1e-12)
    assert lrs[-1] == pytest.approx(5e-4) and s.lr_at(20) == pytest.approx(5e-4)
    assert all(a < b for a, b in zip(lrs, lrs[1:]))
    assert lrs[0] > LrSchedule(ScheduleConfig(name=name, warmup_epochs=2), 5e-4, 100, 10).lr_at(0)
