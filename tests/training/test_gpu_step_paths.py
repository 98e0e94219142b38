"""The GPU step's options, checked for correctness on the CPU: fused optimisers and torch.compile's modes."""

from __future__ import annotations

import pytest
import torch

from cifarlab.config.recipe import OptimConfig
from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.runner.run import run_recipe
from cifarlab.training import loop
from cifarlab.training.optim import build_optimizer


def _train_three_steps(name: str, fused: bool) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = create("lenet", num_classes=10)
    config = OptimConfig(name=name, lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4, fused=fused,
                         bias_lr_scale=2.0)
    optimizer = build_optimizer(model, config, lr=0.05)
    generator = torch.Generator().manual_seed(1)
    for _ in range(3):
        inputs = torch.randn(8, 3, 32, 32, generator=generator)
        labels = torch.randint(0, 10, (8,), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(inputs), labels).backward()
        optimizer.step()
    return {key: value.clone() for key, value in model.state_dict().items()}


@pytest.mark.parametrize("name", ["sgd", "adam", "adamw"])
def test_a_fused_optimiser_takes_the_same_steps_as_the_loop(name):
    looped, fused = _train_three_steps(name, fused=False), _train_three_steps(name, fused=True)
    # Same arithmetic in another order: Adam's steps are about lr (0.05) per element where the gradient is
    # tiny, so float rounding shows near 1e-6 there; 1e-5 is still 5,000 times smaller than one step.
    for key in looped:
        torch.testing.assert_close(fused[key], looped[key], rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)  # the weights both runs started from
    initial = create("lenet", num_classes=10).state_dict()
    assert all(not torch.equal(fused[key], initial[key]) for key in ("features.0.weight", "classifier.6.weight"))  # it did train


def test_fused_is_refused_for_an_optimiser_torch_has_no_fused_kernel_for():
    with pytest.raises(CifarlabError, match=r"optim\.fused=true needs one of sgd, adam, adamw .* not optim\.name=muon"):
        build_optimizer(create("lenet", num_classes=10), OptimConfig(name="muon", fused=True), lr=0.1)


@pytest.mark.parametrize("mode, passed", [("default", None), ("reduce-overhead", "reduce-overhead"),
                                          ("max-autotune", "max-autotune")])
@pytest.mark.slow
def test_compile_mode_reaches_torch_compile_and_the_run_trains(tiny_recipe, monkeypatch, mode, passed):
    # torch.compile itself is exercised by test_loop's compiled run; here the mode must reach it.
    calls = []

    def record(model, mode=None):
        calls.append(mode)
        return model

    monkeypatch.setattr(loop.torch, "compile", record)
    result = run_recipe(tiny_recipe(train={"epochs": 1, "compile": True, "compile_mode": mode},
                                    optim={"fused": True}))
    assert result.status == "finished" and calls == [passed]
