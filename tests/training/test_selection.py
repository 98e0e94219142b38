"""train.select_hardest: each step trains on the highest-loss part of its batch, and BatchNorm moves once."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from cifarlab.experiments.run import run_recipe
from cifarlab.training.losses import get_loss
from cifarlab.training.selection import per_example_loss
from cifarlab.training.step import Optimisation, training_step


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, 3))


def optimisation(model: nn.Module, select: float | None) -> Optimisation:
    return Optimisation(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
                        loss=get_loss("cross_entropy"), device=torch.device("cpu"), select_hardest=select)


def test_per_example_loss_matches_cross_entropy_for_indices_and_soft_targets():
    logits = torch.randn(5, 3, generator=torch.Generator().manual_seed(1))
    labels = torch.tensor([0, 2, 1, 1, 0])
    assert torch.allclose(per_example_loss(logits, labels), F.cross_entropy(logits, labels, reduction="none"))
    soft = F.one_hot(labels, 3).float() * 0.8 + 0.2 / 3
    assert torch.allclose(per_example_loss(logits, soft), F.cross_entropy(logits, soft, reduction="none"))


def test_a_selecting_step_equals_a_plain_step_on_the_hardest_half_and_counts_the_whole_batch():
    g = torch.Generator().manual_seed(2)
    inputs, labels = torch.randn(8, 3, 6, 6, generator=g), torch.randint(0, 3, (8,), generator=g)
    selecting, plain = small_net(), small_net()
    # The hardest half as the model scores it before the step (train mode: batch statistics).
    with torch.no_grad():
        hardest = F.cross_entropy(copy.deepcopy(selecting)(inputs), labels, reduction="none").topk(4).indices
    result = training_step(optimisation(selecting, 0.5), inputs, labels, labels, 0.1, 0)
    training_step(optimisation(plain, None), inputs[hardest], labels[hardest], labels[hardest], 0.1, 0)
    for (name, a), b in zip(selecting.state_dict().items(), plain.state_dict().values()):
        # Parameters and BatchNorm statistics alike: the scoring pass left the running statistics alone.
        assert torch.allclose(a.float(), b.float(), atol=1e-6), name
    assert result.logits.shape == (8, 3)  # top-1 of the step is counted over the whole batch
    assert int(result.correct) == int((result.logits.argmax(1) == labels).sum())


def test_a_recipe_with_selection_trains_to_the_end_and_writes_its_checkpoint(tiny_recipe):
    result = run_recipe(tiny_recipe(train={"select_hardest": 0.5}))
    assert result.status == "finished"
    assert result.run_dir.joinpath("last.pt").is_file()
