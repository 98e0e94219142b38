"""The training loop: one screen of steps, validation at epoch ends, checkpoints that resume exactly.

`Trainer.fit()` runs from the state in hand (fresh or loaded from `last.pt`) to the last step. The
Trainer receives its model and batches ready-made (see `cifarlab.runner.run`); each step is
`cifarlab.training.step.training_step`; everything that watches the run (console, metrics files,
TensorBoard, analyses) is a callback. Hot path rules: metrics stay on the device between log
points, and nothing calls `.item()` per step.

A study that trains without a run of its own (the BatchNorm study, a pruned model's fine-tuning)
uses the same Trainer with `run_dir=None`: nothing is written. `FixedBatches` replays batches made
up front where a `BatchPipeline` is not wanted.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from cifarlab import runs
from cifarlab.config import recipe_to_dict
from cifarlab.config.flatten import RESULT_NEUTRAL, differing_keys, flatten, recipe_values, without
from cifarlab.config.recipe import Recipe
from cifarlab.data.pipeline import Batch, BatchPipeline
from cifarlab.errors import CifarlabError
from cifarlab.runs import checkpoint as ckpt_io
from cifarlab.training.averaging import Lookahead, ModelEMA
from cifarlab.training.callbacks import Callback, CallbackList, StepOutput
from cifarlab.training.distributed import Placement
from cifarlab.training.interrupt import StopRequest
from cifarlab.training.losses import get_loss
from cifarlab.training.metrics_window import MetricsWindow
from cifarlab.training.optim import build_optimizer, peak_lr
from cifarlab.training.schedule import LrSchedule
from cifarlab.training.step import Optimisation, autocast_for, training_step

# Recipe keys that do not change the trained weights: editing them does not stop a resume. Evaluation
# changes a score, not the weights.
_NOT_TRAINING = (*RESULT_NEUTRAL, "eval")


def training_values(recipe: Recipe) -> dict:
    """Every recipe value the training depends on, flattened to dotted keys (not the run's name,
    folder, logging or evaluation): a checkpoint keeps them so a resume can name what changed."""
    return without(recipe_values(recipe), _NOT_TRAINING)


def changed_keys(saved: dict, recipe: Recipe) -> list[str]:
    """Dotted keys whose training value differs between a checkpoint and `recipe`.

    A checkpoint written before options were flattened holds `model.options` as one mapping: the
    diff flattens it too, so such a run resumes as before. A key cifarlab gained after the checkpoint
    was written is no change while it keeps its default (the run trained as that default does).
    """
    now = training_values(recipe)
    older = flatten(saved)
    defaults = training_values(Recipe())
    added = [key for key, value in now.items() if key not in older and key in defaults and value == defaults[key]]
    return differing_keys(older, now, ignore=(*_NOT_TRAINING, *added))


@dataclass
class Progress:
    step: int = 0
    best_val_top1: float = -1.0
    best_step: int = -1
    finished: bool = False  # end-of-run work (lookahead's last update) done


@dataclass
class FixedBatches:
    """Batches made up front, replayed in the same order every epoch: a Trainer's training batches
    for a hand-made stream (a test's, a notebook's) instead of a `BatchPipeline`."""

    batches: Sequence[Batch]
    num_classes: int
    mean: tuple[float, ...] = ()  # the normalisation the batches carry, as a checkpoint records it
    std: tuple[float, ...] = ()

    def __len__(self) -> int:
        return len(self.batches)

    def epoch(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        return iter(self.batches[start:])


class Trainer:
    """Holds a run's model, optimiser, schedule and batches; `fit()` trains to the end.

    `run_dir=None` trains without a run folder: no checkpoint is written (a study's training that
    keeps its results in memory). `test_curve_batches` (eval.test_curve) are scored at every epoch end
    and only recorded (test_loss, test_top1): no checkpoint choice, plateau or stop looks at them.
    """

    def __init__(self, recipe: Recipe, model: nn.Module, train_batches: BatchPipeline | FixedBatches,
                 val_batches: Optional[BatchPipeline], placement: Placement, run_dir: Optional[Path],
                 callbacks: Iterable[Callback] = (), classes: Optional[list[str]] = None,
                 test_curve_batches: Optional[BatchPipeline] = None):
        self.recipe, self.place = recipe, placement
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.train_batches, self.val_batches = train_batches, val_batches
        self.test_curve_batches = test_curve_batches
        self.callbacks = CallbackList(callbacks)
        self.classes = list(classes) if classes is not None else [str(i) for i in range(train_batches.num_classes)]
        t, device = recipe.train, placement.device
        self.model = model.to(device, memory_format=torch.channels_last if t.channels_last else torch.preserve_format)
        if t.batch_size % (t.accumulate * placement.world_size):
            raise CifarlabError(f"train.batch_size={t.batch_size} must divide into train.accumulate={t.accumulate} "
                                f"micro-batches on each of {placement.world_size} processes")
        self.steps_per_epoch = len(train_batches)
        self.total_steps = t.steps or max(math.ceil(t.epochs * self.steps_per_epoch), 1)
        self.lr = peak_lr(recipe.optim, t.batch_size)
        self.optimizer = build_optimizer(self.model, recipe.optim, self.lr)
        self.schedule = LrSchedule(recipe.schedule, self.lr, self.total_steps, self.steps_per_epoch, recipe.schedule.boundaries)
        self.scaler = torch.amp.GradScaler(device.type, enabled=True) if t.precision == "fp16" else None
        self.ema = ModelEMA(self.model, decay=t.ema_decay) if t.ema_decay else None
        self.lookahead = Lookahead(self.model, self.total_steps) if t.lookahead else None
        self.optimisation = Optimisation(
            model=self.model, forward=self._wrap(self.model), optimizer=self.optimizer,
            loss=get_loss(t.loss, t.label_smoothing), device=device, precision=t.precision, accumulate=t.accumulate,
            grad_clip=t.grad_clip, grad_clip_mode=t.grad_clip_mode, scaler=self.scaler, ema=self.ema,
            lookahead=self.lookahead,
        )
        self.progress = Progress()
        self.window = MetricsWindow(device)
        self.stop_requested = False  # set by a callback (or a signal) to end the run after this step
        # Saved in checkpoints, so --resume can name the keys of recipe.yaml edited in between.
        self.training_values = training_values(recipe)
        self.stop_exit_code: Optional[int] = None  # 130 after Ctrl-C, 143 after SIGTERM

    def _wrap(self, model: nn.Module) -> nn.Module:
        if self.place.world_size > 1:
            ids = [self.place.device.index] if self.place.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        train = self.recipe.train
        if not train.compile:
            return model
        return torch.compile(model, mode=None if train.compile_mode == "default" else train.compile_mode)

    @property
    def num_classes(self) -> int:
        return self.train_batches.num_classes

    # ---- checkpoints -------------------------------------------------------------------------

    def state(self) -> dict:
        return dict(
            model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
            schedule=self.schedule.state_dict(), scaler=self.scaler.state_dict() if self.scaler else None,
            ema=self.ema.state_dict() if self.ema else None, rng=ckpt_io.rng_state(),
            lookahead=self.lookahead.state_dict() if self.lookahead else None,
            progress=vars(self.progress).copy(), window=self.window.state_dict(), model_name=self.recipe.model.name,
            num_classes=self.num_classes, classes=list(self.classes),
            mean=list(self.train_batches.mean), std=list(self.train_batches.std), recipe_name=self.recipe.name,
            training_values=self.training_values,
            # The whole recipe (a few KiB), so a checkpoint copied out of its run folder is still scored as
            # its run scored it: `cifarlab eval model.pt` rebuilds the model's options, data and precision.
            recipe=recipe_to_dict(self.recipe),
        )

    def save(self, name: str) -> None:
        if self.place.is_main and self.run_dir is not None:
            ckpt_io.save_checkpoint(self.run_dir / name, **self.state())

    def load_state(self, state: dict, source: str) -> None:
        """Continue from a checkpoint's content (read by `load_checkpoint`); `source` names it in errors."""
        ckpt_io.load_model_state(self.model, state["model"], source)
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        if self.ema and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        if self.lookahead and state.get("lookahead"):
            self.lookahead.load_state_dict(state["lookahead"])
        if state.get("window"):  # the epoch's running loss and accuracy continue where they stopped
            self.window.load_state_dict(state["window"])
        ckpt_io.set_rng_state(state["rng"])
        self.progress = Progress(**state["progress"])

    # ---- the loop ----------------------------------------------------------------------------

    def fit(self, stop_after: Optional[int] = None) -> str:
        """Train to the last step; returns "finished", or "stopped" after Ctrl-C, SIGTERM, a callback's
        request or `stop_after` steps (a `last.pt` is written first). The caller ends the callbacks
        (`on_end`) once it has evaluated the run, so final scores still reach them."""
        log_every = self.recipe.train.log_every
        self.callbacks.call("on_start", self, self.total_steps, self.progress.step)
        status = "finished"
        with StopRequest(saves_checkpoint=self.run_dir is not None) as signal_stop:
            while self.progress.step < self.total_steps and status == "finished":
                epoch = self.progress.step // self.steps_per_epoch
                start = self.progress.step % self.steps_per_epoch
                for batch in self.train_batches.epoch(epoch, start=start):
                    self._step(batch)
                    step = self.progress.step
                    if step % log_every == 0 or step == self.total_steps:
                        self._log_step()
                    if step % self.steps_per_epoch == 0 or step == self.total_steps:
                        self._end_epoch()
                    if signal_stop.requested or self.stop_requested or (stop_after is not None and step >= stop_after):
                        self.stop_exit_code = signal_stop.exit_code
                        self._check_finite()
                        self.save(runs.LAST)
                        status = "stopped"
                        break
                    if step >= self.total_steps:
                        break
            if status == "finished" and self.lookahead is not None and not self.progress.finished:
                # Still under the signal handler: a Ctrl-C during this last validation lets it end, then the
                # run stops with its complete weights in last.pt (--resume evaluates it).
                self._finish_lookahead()
                if signal_stop.requested:
                    self.stop_exit_code = signal_stop.exit_code
                    status = "stopped"
        return status

    def _step(self, batch) -> None:
        lr = self.schedule.lr_at(self.progress.step)
        result = training_step(self.optimisation, batch.inputs, batch.targets, batch.labels, lr, self.progress.step)
        self.progress.step += 1
        self.window.add(result.loss, result.correct, len(batch.labels), self.progress.step)
        if self.callbacks.callbacks:
            self.callbacks.call("on_step", self, StepOutput(
                step=self.progress.step, inputs=batch.inputs, targets=batch.targets, labels=batch.labels,
                logits=result.logits, loss=result.loss, lr=lr))

    def _finish_lookahead(self) -> None:
        """Put the slow weights into the model; they are the run's final weights (and may be its best)."""
        self.lookahead.finish(self.model)
        self.progress.finished = True
        if self.val_batches is not None:
            _, val_top1 = self.validate(self.model)
            if val_top1 > self.progress.best_val_top1:
                self.progress.best_val_top1, self.progress.best_step = val_top1, self.progress.step
                self.save(runs.BEST)
        self.save(runs.LAST)

    def _check_finite(self) -> None:
        bad = self.window.first_nonfinite()
        if bad is not None:
            last = self.run_dir / runs.LAST if self.run_dir is not None else None
            kept = (f"the last good checkpoint is {last}" if last is not None and last.is_file()
                    else "no checkpoint was written before it")
            raise CifarlabError(
                f"the loss became NaN or infinite at step {bad}; {kept}. "
                "Lower optim.lr, add train.grad_clip, or use train.precision=fp32"
            )

    def _log_step(self) -> None:
        self._check_finite()
        record = self.window.flush(kind="step", step=self.progress.step, lr=self.schedule.lr_at(self.progress.step - 1),
                                   epoch=self.progress.step / self.steps_per_epoch)
        self._emit("on_log", record)

    def _end_epoch(self) -> None:
        self._check_finite()
        step = self.progress.step
        epoch = math.ceil(step / self.steps_per_epoch)
        val_loss = val_top1 = None
        if self.val_batches is not None and (epoch % self.recipe.train.eval_every == 0 or step == self.total_steps):
            val_loss, val_top1 = self.validate(self.model)
            self.schedule.on_validation(val_loss)
            if val_top1 > self.progress.best_val_top1:
                self.progress.best_val_top1, self.progress.best_step = val_top1, step
                self.save(runs.BEST)
        record = self.window.epoch_summary(step=step, epoch=epoch, lr=self.schedule.lr_at(step - 1))
        record.update(val_loss=val_loss, val_top1=val_top1)
        if self.ema is not None and self.val_batches is not None and val_loss is not None:
            record["ema_val_loss"], record["ema_val_top1"] = self.validate(self.ema.module)
        if self.test_curve_batches is not None:  # display only: recorded after every decision above
            record["test_loss"], record["test_top1"] = self.validate(self.model, self.test_curve_batches)
        every = self.recipe.train.checkpoint_every
        if step == self.total_steps or (every and epoch % every == 0):
            self.save(runs.LAST)
        self._emit("on_epoch", record)

    def _emit(self, moment: str, record: dict) -> None:
        if self.place.is_main:
            self.callbacks.call(moment, self, record)

    @torch.no_grad()
    def validate(self, model: nn.Module, batches: Optional[BatchPipeline] = None) -> tuple[float, float]:
        """Mean loss and top-1 over every validation image (or every image of `batches`)."""
        batches = batches if batches is not None else self.val_batches
        was_training = model.training
        model.eval()
        loss = correct = 0.0
        with autocast_for(self.place.device, self.recipe.train.precision):
            for batch in batches.epoch(0):
                logits = model(batch.inputs).float()
                loss += F.cross_entropy(logits, batch.labels, reduction="sum")
                correct += (logits.argmax(1) == batch.labels).sum()
        model.train(was_training)
        n = len(batches.images)
        return float(loss) / n, float(correct) / n
