import copy

import pytest
import torch
from torch import nn

from cifarlab.errors import CifarlabError
from cifarlab.training.losses import get_loss
from cifarlab.training.step import Optimisation, training_step


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 16), nn.ReLU(), nn.Linear(16, 3))


def _batch():
    generator = torch.Generator().manual_seed(1)
    inputs = torch.randn(8, 3, 4, 4, generator=generator)
    labels = torch.randint(0, 3, (8,), generator=generator)
    return inputs, labels


def test_one_step_equals_a_hand_written_sgd_step_and_leaves_its_gradients_readable():
    model = _tiny_model()
    reference = copy.deepcopy(model)
    inputs, labels = _batch()
    opt = Optimisation(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
                       loss=get_loss("cross_entropy"), device=torch.device("cpu"))
    result = training_step(opt, inputs, labels, labels, lr=0.1, step=0)

    loss = nn.functional.cross_entropy(reference(inputs), labels)
    loss.backward()
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.1 * p.grad
    assert torch.isclose(result.loss, loss.detach())
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs)
        torch.testing.assert_close(ours.grad, theirs.grad)  # callbacks read these after the step
    assert result.logits.shape == (8, 3) and not result.logits.requires_grad
    assert int(result.correct) == int((result.logits.argmax(1) == labels).sum())


def test_clipping_bounds_the_gradient_norm_the_optimiser_sees():
    model = _tiny_model()
    inputs, labels = _batch()
    opt = Optimisation(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
                       loss=get_loss("mse"), device=torch.device("cpu"), grad_clip=0.01)
    training_step(opt, inputs * 100, labels, labels, lr=0.1, step=0)
    norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in model.parameters()]))
    assert norm <= 0.01 + 1e-6


def test_micro_batches_accumulate_to_the_full_batch_gradient():
    inputs, labels = _batch()
    grads = []
    for accumulate in (1, 4):
        model = _tiny_model()
        opt = Optimisation(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.0),
                           loss=get_loss("cross_entropy"), device=torch.device("cpu"), accumulate=accumulate)
        result = training_step(opt, inputs, labels, labels, lr=0.0, step=0)
        grads.append([p.grad.clone() for p in model.parameters()])
        assert result.logits.shape == (8, 3)
    for full, split in zip(*grads):
        torch.testing.assert_close(full, split, rtol=1e-5, atol=1e-6)


def test_auto_precision_is_bf16_exactly_where_the_device_has_bf16_units():
    from cifarlab.training.step import has_bf16_units, resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if has_bf16_units(cpu) else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"
    assert resolve_precision("auto", torch.device("meta")) == "fp32"  # no bf16 units known there


def _clipped_step(scaler, mode: str):
    model = _tiny_model()
    inputs, labels = _batch()
    opt = Optimisation(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
                       loss=get_loss("mse"), device=torch.device("cpu"), grad_clip=0.01, grad_clip_mode=mode,
                       scaler=scaler)
    training_step(opt, inputs * 100, labels, labels, lr=0.1, step=0)
    return model


@pytest.mark.parametrize("mode", ["norm", "value"])
def test_the_fp16_loss_scaler_path_clips_the_true_gradients_not_the_scaled_ones(mode):
    # train.precision=fp16 adds a GradScaler (loss x 65536); the step unscales before clipping, so the
    # clipped gradients and the update equal those of an unscaled step. torch's GradScaler runs on the CPU
    # too, so this checks the fp16 path's scale / unscale / clip / step order without a GPU.
    plain = _clipped_step(None, mode)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    scaled = _clipped_step(scaler, mode)
    for ours, theirs in zip(scaled.parameters(), plain.parameters()):
        torch.testing.assert_close(ours.grad, theirs.grad, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-7)
    grads = torch.cat([p.grad.flatten() for p in scaled.parameters()])
    bound = torch.linalg.vector_norm(grads) if mode == "norm" else grads.abs().max()
    assert 0.009 < float(bound) <= 0.01 + 1e-6  # clipped at the threshold, not 65536 times below it
    assert scaler.get_scale() == 2.0**16  # finite gradients: the step was taken, the scale kept


def test_fp16_off_a_cuda_gpu_is_refused_when_the_step_is_set_up_with_the_fix():
    model = _tiny_model()
    with pytest.raises(CifarlabError, match=r"train\.precision=fp16 needs a CUDA GPU .* trains on cpu; "
                                            r"use train\.precision=bf16 there"):
        Optimisation(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
                     loss=get_loss("cross_entropy"), device=torch.device("cpu"), precision="fp16")
