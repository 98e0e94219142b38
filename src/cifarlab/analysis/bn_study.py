"""The BatchNorm landscape study: VGG-A with and without BatchNorm, probed along the gradient at every step.

Santurkar, Tsipras, Ilyas, Madry, "How Does Batch Normalization Help Optimization?", NeurIPS 2018
(arXiv:1805.11604). Both nets train at each learning rate from one initialisation per net, on the same
batches (the batch pipeline is a pure function of seed, epoch and batch index). Each run is a
`Trainer` run without a run folder, watched by the `GradientProbe` callback: at step t, with weights
w and the training loss's gradient g on that step's batch (still in `.grad` when the callback sees
the step), every `probe_every` steps it moves a copy of the net to w' = w - eta * g for each probed
step size eta and records, on the same batch and in training mode:

    loss landscape          L(w')                                   (the variation of the loss along g)
    gradient predictiveness ||grad L(w') - g||                      (how far the gradient moves along g)
    effective beta-smoothness  max over eta of ||grad L(w') - g|| / ||w' - w||

and at every step the training loss L(w) itself, whose spread over learning rates is the FDU
"loss landscape" figure. Step sizes are multiples of the run's learning rate.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cifarlab.config.recipe import Recipe, ScheduleConfig
from cifarlab.data.pipeline import Batch, BatchPipeline
from cifarlab.data.prepare import prepare_splits
from cifarlab.errors import CifarlabError
from cifarlab.models import create
from cifarlab.training.callbacks import Callback, StepOutput
from cifarlab.training.distributed import Placement, pick_device
from cifarlab.training.loop import FixedBatches, Trainer
from cifarlab.training.losses import LossFn, get_loss

MODELS = ("vgg_a", "vgg_a_bn")
DEFAULT_LRS = (1e-3, 2e-3, 1e-4, 5e-4)


@dataclass
class ProbeTrace:
    """What one training run recorded; probe rows are the steps in `probe_steps`, columns the step sizes."""

    loss: np.ndarray  # (steps,) training loss L(w_t) on step t's batch
    probe_steps: np.ndarray  # (probes,) the 0-based steps probed
    step_sizes: np.ndarray  # (sizes,) eta of each probe column
    path_loss: np.ndarray  # (probes, sizes) L(w_t - eta g_t)
    gradient_change: np.ndarray  # (probes, sizes) ||grad L(w_t - eta g_t) - g_t||
    gradient_norm: np.ndarray  # (probes,) ||g_t||

    @property
    def smoothness(self) -> np.ndarray:
        """(probes,) effective beta-smoothness: the largest gradient change per unit of distance moved."""
        distance = self.step_sizes[None, :] * self.gradient_norm[:, None]
        ratio = np.divide(self.gradient_change, distance, out=np.zeros_like(self.gradient_change), where=distance > 0)
        return ratio.max(axis=1)


def _norm(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.sqrt(sum(t.double().square().sum() for t in tensors))


def loss_and_gradient(model: nn.Module, params: list[nn.Parameter], batch: Batch,
                      loss_fn: LossFn) -> tuple[float, list[torch.Tensor]]:
    """The loss of `model` on `batch` in training mode (batch statistics, as a training step sees it) and its gradient."""
    model.train()
    loss = loss_fn(model(batch.inputs), batch.targets)
    gradient = torch.autograd.grad(loss, params, allow_unused=True)
    return float(loss.detach()), [torch.zeros_like(p) if g is None else g for p, g in zip(params, gradient)]


class GradientProbe(Callback):
    """Records the training loss of every step and, every `probe_every` steps, the loss and gradient
    along that step's gradient at the step sizes `step_sizes` (the module docstring's three measures).

    A callback, so it watches any Trainer run. A probe starts from the weights the step started from:
    they are kept at the end of the step before (or at the start), so no callback that changes the
    weights may run after this one.
    """

    def __init__(self, step_sizes: Sequence[float], probe_every: int, loss_fn: LossFn):
        if probe_every < 1 or not step_sizes or min(step_sizes) <= 0:
            raise CifarlabError("the BN study needs probe_every >= 1 and positive step sizes; "
                                "use e.g. --probe-every 4 --step-multiples 1 4 16")
        self.step_sizes, self.probe_every, self.loss_fn = list(step_sizes), probe_every, loss_fn
        self.losses: list[torch.Tensor] = []  # kept on the device: no host synchronisation on unprobed steps
        self.steps: list[int] = []
        self.path_loss: list[list[float]] = []
        self.gradient_change: list[list[float]] = []
        self.gradient_norm: list[float] = []
        self.params: list[nn.Parameter] = []  # the trained model's, set when the run starts
        self.probe: Optional[nn.Module] = None
        self.probe_params: list[nn.Parameter] = []
        self.start: Optional[list[torch.Tensor]] = None  # the weights the current step started from, when probed

    def on_start(self, trainer: Trainer, total_steps: int, start_step: int) -> None:
        self.params = [p for p in trainer.model.parameters() if p.requires_grad]
        self.probe = copy.deepcopy(trainer.model)  # moved to w - eta g, so the trained model's own state is never touched
        self.probe_params = [p for p in self.probe.parameters() if p.requires_grad]
        self._keep_start(start_step)

    def _keep_start(self, step: int) -> None:
        """Keep the weights step `step` (0-based) starts from, when that step is probed."""
        self.start = [p.detach().clone() for p in self.params] if step % self.probe_every == 0 else None

    def on_step(self, trainer: Trainer, step: StepOutput) -> None:
        self.losses.append(step.loss)
        if self.start is not None:
            self._probe(step.step - 1, Batch(step.inputs, step.targets, step.labels))
        self._keep_start(step.step)

    def _probe(self, step: int, batch: Batch) -> None:
        """Move the probe copy to w - eta g for each step size; the parameters' .grad hold this step's g."""
        gradient = [torch.zeros_like(p) if p.grad is None else p.grad.detach().clone() for p in self.params]
        row_loss, row_change = [], []
        for eta in self.step_sizes:
            with torch.no_grad():
                for moved, w, g in zip(self.probe_params, self.start, gradient):
                    moved.copy_(w - eta * g)
            loss_there, gradient_there = loss_and_gradient(self.probe, self.probe_params, batch, self.loss_fn)
            row_loss.append(loss_there)
            row_change.append(float(_norm([a - b for a, b in zip(gradient_there, gradient)])))
        self.steps.append(step)
        self.path_loss.append(row_loss)
        self.gradient_change.append(row_change)
        self.gradient_norm.append(float(_norm(gradient)))

    def trace(self) -> ProbeTrace:
        """Everything recorded so far, as arrays."""
        sizes = len(self.step_sizes)
        return ProbeTrace(
            loss=torch.stack(self.losses).float().cpu().numpy() if self.losses else np.zeros(0),
            probe_steps=np.array(self.steps, dtype=np.int64), step_sizes=np.array(self.step_sizes, dtype=np.float64),
            path_loss=np.array(self.path_loss, dtype=np.float64).reshape(-1, sizes),
            gradient_change=np.array(self.gradient_change, dtype=np.float64).reshape(-1, sizes),
            gradient_norm=np.array(self.gradient_norm, dtype=np.float64),
        )


def _study_recipe(recipe: Recipe, lr: float) -> Recipe:
    """`recipe` as one run of the study trains it: plain fp32 steps at the constant `lr`, with the recipe's
    optimiser, loss and length. Its schedule, clipping, accumulation, EMA, lookahead, compilation and
    channels_last are left out, so that each probe reads the raw gradient of a plain step."""
    train = replace(recipe.train, precision="fp32", accumulate=1, grad_clip=None, ema_decay=None, lookahead=False,
                    compile=False, channels_last=False)
    return replace(recipe, optim=replace(recipe.optim, lr=lr, scale_lr_batch=None), schedule=ScheduleConfig(),
                   train=train)


def probe_training(recipe: Recipe, model: nn.Module, batches: BatchPipeline | FixedBatches, lr: float,
                   step_sizes: Sequence[float], probe_every: int) -> ProbeTrace:
    """Train `model` on `batches` with the Trainer as `_study_recipe(recipe, lr)` sets it (the recipe's
    train.steps or train.epochs long), probing along the gradient every `probe_every` steps."""
    probe = GradientProbe(step_sizes, probe_every, get_loss(recipe.train.loss, recipe.train.label_smoothing))
    trainer = Trainer(_study_recipe(recipe, lr), model, batches, None, Placement(pick_device(recipe.train.device)),
                      run_dir=None, callbacks=[probe])
    if trainer.fit() != "finished":
        # Ctrl-C or SIGTERM: the Trainer stopped after the step in hand; a study has nothing to resume from.
        raise KeyboardInterrupt
    return probe.trace()


@torch.no_grad()
def validate(model: nn.Module, pipeline: BatchPipeline) -> tuple[float, float]:
    """Mean cross-entropy and top-1 over every image of `pipeline`."""
    model.eval()
    loss = correct = 0.0
    for batch in pipeline.epoch(0):
        logits = model(batch.inputs).float()
        loss += float(F.cross_entropy(logits, batch.labels, reduction="sum"))
        correct += float((logits.argmax(1) == batch.labels).sum())
    model.train()
    count = len(pipeline.images)
    return loss / count, correct / count


@dataclass
class StudyRun:
    """One net at one learning rate: its trace, final validation scores and training time."""

    model: str
    lr: float
    trace: ProbeTrace
    val_loss: float
    val_top1: float
    time_s: float


@dataclass
class BNStudy:
    """Every run of the study, nets in MODELS order, learning rates in the order given."""

    models: list[str]
    lrs: list[float]
    step_multiples: list[float]
    probe_every: int
    steps: int
    runs: list[StudyRun] = field(default_factory=list)

    def run(self, model: str, lr: float) -> StudyRun:
        return next(r for r in self.runs if r.model == model and r.lr == lr)


def _study_batches(recipe: Recipe, device) -> tuple[BatchPipeline, Optional[BatchPipeline]]:
    """The recipe's training batches (the same stream for every run: a pure function of seed, epoch and
    batch index) and its validation batches (None without a validation split)."""
    splits = prepare_splits(recipe.data, recipe.seed)
    common = dict(num_classes=splits.num_classes, mean=splits.mean, std=splits.std)
    train = BatchPipeline(splits.train_images.to(device), splits.train_labels, batch_size=recipe.train.batch_size,
                          augment=recipe.augment, label_smoothing=recipe.train.label_smoothing, seed=recipe.seed, **common)
    val = BatchPipeline(splits.val_images.to(device), splits.val_labels, batch_size=recipe.eval.batch_size,
                        shuffle=False, drop_last=False, **common) if len(splits.val_images) else None
    return train, val


def _study_run(recipe: Recipe, study: BNStudy, name: str, initial: dict, lr: float, train: BatchPipeline,
               val: Optional[BatchPipeline]) -> StudyRun:
    """Net `name` from the weights `initial`, trained and probed at `lr`, then validated."""
    model = create(name, num_classes=train.num_classes, **recipe.model.options)
    model.load_state_dict(initial)
    started = time.perf_counter()
    trace = probe_training(recipe, model, train, lr, [m * lr for m in study.step_multiples], study.probe_every)
    elapsed = time.perf_counter() - started
    val_loss, val_top1 = validate(model, val) if val is not None else (math.nan, math.nan)
    return StudyRun(name, lr, trace, val_loss, val_top1, elapsed)


def run_bn_study(recipe: Recipe, lrs: Sequence[float] = DEFAULT_LRS, step_multiples: Sequence[float] = (1, 10, 100),
                 probe_every: int = 1, models: Sequence[str] = MODELS,
                 on_run: Callable[[StudyRun], None] | None = None) -> BNStudy:
    """Train each net of `models` at each learning rate on the recipe's data, optimiser and loss.

    Per net, the weights are built once (seeded by `recipe.seed`) and copied into every learning
    rate's run; `recipe.model.options` (width_multiplier, activation) apply to every net, and
    `recipe.train.epochs` (or `steps`) sets the length. Each run keeps its learning rate constant
    (the recipe's schedule is not used) and trains in fp32. `on_run(study_run)` is called after each run.
    """
    if not lrs or min(lrs) <= 0:
        raise CifarlabError("the BN study needs positive learning rates, e.g. --lrs 1e-3 2e-3 1e-4 5e-4")
    if recipe.train.precision != "fp32":
        # Its probes subtract gradients taken a small step apart: reduced precision would measure its own
        # rounding. Refused rather than ignored, so that no figure is labelled with a precision it did not use.
        raise CifarlabError(f"the BN study trains and probes in fp32; drop train.precision={recipe.train.precision} "
                            "(or set train.precision=fp32)")
    train, val = _study_batches(recipe, pick_device(recipe.train.device))
    steps = recipe.train.steps or max(math.ceil(recipe.train.epochs * len(train)), 1)  # as the Trainer counts them
    study = BNStudy(list(models), [float(lr) for lr in lrs], [float(m) for m in step_multiples], probe_every, steps)
    for name in models:
        torch.manual_seed(recipe.seed)
        initial = copy.deepcopy(create(name, num_classes=train.num_classes, **recipe.model.options).state_dict())
        for lr in study.lrs:
            study.runs.append(_study_run(recipe, study, name, initial, lr, train, val))
            if on_run is not None:
                on_run(study.runs[-1])
    return study
