"""Checks that need a CUDA GPU: `bash bench/gpu.sh checks` runs them on a GPU machine; `make test` leaves
this folder out (on the CPU the same step logic is checked with a loss scaler in tests/training/test_step.py)."""

import torch

from cifarlab.training.losses import get_loss
from cifarlab.training.step import Optimisation, training_step
from tests.training.test_step import _batch, _tiny_model


def test_an_fp16_step_on_a_gpu_scales_unscales_and_clips_gradient_values():
    device = torch.device("cuda")
    model = _tiny_model().to(device)
    inputs, labels = (t.to(device) for t in _batch())
    scaler = torch.amp.GradScaler("cuda", init_scale=2.0**16)
    opt = Optimisation(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=1.0),
                       loss=get_loss("cross_entropy"), device=device, precision="fp16", grad_clip=1e-3,
                       grad_clip_mode="value", scaler=scaler)
    result = training_step(opt, inputs, labels, labels, lr=0.1, step=0)
    assert torch.isfinite(result.loss) and result.logits.dtype == torch.float16
    assert max(float(p.grad.abs().max()) for p in model.parameters()) <= 1e-3 + 1e-9
