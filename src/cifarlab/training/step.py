"""One optimisation step as a free function: forward, loss, backward, clip, optimiser, EMA, lookahead.

The Trainer, the LR range test and any study that trains (lockstep comparisons, the BatchNorm
study) call `training_step`, so they all train the same way. The learning rate is set by the caller
(a schedule is a plain function of the step). Gradients are cleared at the START of a step, so
after it returns every parameter's `.grad` still holds this step's gradients for callbacks to read.
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

from cifarlab.config.validate import fp16_refusal
from cifarlab.errors import CifarlabError
from cifarlab.training.averaging import Lookahead, ModelEMA
from cifarlab.training.losses import LossFn
from cifarlab.training.optim import set_lr


def has_bf16_units(device: torch.device) -> bool:
    """Whether `device` computes bf16 natively: a GPU that supports it, or a CPU with AVX-512 BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:  # not Linux: emulated bf16 is slower than fp32, so stay in fp32
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """`auto` becomes bf16 where the device has bf16 units, fp32 elsewhere; other values stay."""
    if precision != "auto":
        return precision
    return "bf16" if has_bf16_units(device) else "fp32"


def autocast_for(device: torch.device, precision: str):
    """The autocast context for `precision` (fp32: none; auto: see `resolve_precision`)."""
    precision = resolve_precision(precision, device)
    if precision == "fp32":
        return nullcontext()
    check_precision(precision, device)
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse fp16 off a CUDA GPU: torch's loss scaling and fast fp16 kernels are CUDA's."""
    if precision == "fp16" and device.type != "cuda":
        raise CifarlabError(fp16_refusal(str(device)))


@dataclass
class Optimisation:
    """Everything one step needs; built once per run (see Trainer) or per study variant."""

    model: nn.Module  # owns the parameters (EMA, lookahead and clipping read it)
    optimizer: torch.optim.Optimizer
    loss: LossFn
    device: torch.device
    forward: Optional[nn.Module] = None  # what is called: a compiled or DDP wrapper of `model`
    precision: str = "fp32"
    accumulate: int = 1  # micro-batches per step (BiT batch_split)
    grad_clip: Optional[float] = None
    grad_clip_mode: str = "norm"
    scaler: Optional[torch.amp.GradScaler] = None  # fp16 only
    ema: Optional[ModelEMA] = None
    lookahead: Optional[Lookahead] = None

    def __post_init__(self):
        if self.forward is None:
            self.forward = self.model
        check_precision(self.precision, self.device)  # before a run writes anything (train.device=auto on a CPU)


@dataclass
class StepResult:
    loss: torch.Tensor  # detached mean loss over the step's micro-batches
    logits: torch.Tensor  # detached, for every image of the batch
    correct: torch.Tensor  # number of images whose top-1 prediction is their label


def training_step(opt: Optimisation, inputs: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor,
                  lr: float, step: int) -> StepResult:
    """Train on one batch at learning rate `lr`; `step` counts the optimiser steps done before this one.

    No host synchronisation happens here: the returned tensors stay on the device.
    """
    set_lr(opt.optimizer, lr)
    opt.model.train()
    opt.optimizer.zero_grad(set_to_none=True)
    scaler = opt.scaler
    ddp = isinstance(opt.forward, nn.parallel.DistributedDataParallel)
    parts = list(zip(inputs.chunk(opt.accumulate), targets.chunk(opt.accumulate), labels.chunk(opt.accumulate)))
    losses, logits_seen = [], []
    for i, (x, y, _) in enumerate(parts):
        sync = i == len(parts) - 1 or not ddp  # all-reduce gradients once, on the last micro-batch
        with (nullcontext() if sync else opt.forward.no_sync()), autocast_for(opt.device, opt.precision):
            logits = opt.forward(x)
            loss = opt.loss(logits, y)
        scaled = loss / len(parts)
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        losses.append(loss.detach())
        logits_seen.append(logits.detach())
    if opt.grad_clip is not None:
        if scaler is not None:
            scaler.unscale_(opt.optimizer)
        params = [p for p in opt.model.parameters() if p.grad is not None]
        if opt.grad_clip_mode == "norm":
            torch.nn.utils.clip_grad_norm_(params, opt.grad_clip)
        else:
            torch.nn.utils.clip_grad_value_(params, opt.grad_clip)
    if scaler is not None:
        scaler.step(opt.optimizer)
        scaler.update()
    else:
        opt.optimizer.step()
    if opt.ema is not None:
        opt.ema.update(opt.model)
    if opt.lookahead is not None:
        opt.lookahead.step(opt.model, step + 1)
    all_logits = torch.cat(logits_seen) if len(logits_seen) > 1 else logits_seen[0]
    return StepResult(loss=torch.stack(losses).mean(), logits=all_logits,
                      correct=(all_logits.argmax(1) == labels).sum())
