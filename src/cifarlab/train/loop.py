"""The training loop: one screen of steps, validation at epoch ends, checkpoints that resume exactly.

`Trainer.fit()` runs from the state in hand (fresh or loaded from `last.pt`) to the last step. Hot
path rules: batches come from the device-resident pipeline, metrics stay on the device between log
points, and nothing calls `.item()` per step.
"""

from __future__ import annotations

import math
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from cifarlab.config.recipe import AugmentConfig, Recipe
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.errors import CifarlabError
from cifarlab.train import checkpoint as ckpt_io
from cifarlab.train.averaging import Lookahead, ModelEMA
from cifarlab.train.distributed import Placement
from cifarlab.train.interrupt import StopRequest
from cifarlab.train.optim import build_optimizer, peak_lr, set_lr
from cifarlab.train.schedule import LrSchedule
from cifarlab.train.sinks import MetricsSink
from cifarlab.train.whitening import init_airbench


@dataclass
class Progress:
    step: int = 0
    best_val_top1: float = -1.0
    best_step: int = -1
    finished: bool = False  # end-of-run work (lookahead's last update) done


def autocast_for(device: torch.device, precision: str):
    if precision == "fp32":
        return nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise CifarlabError("train.precision=fp16 needs a CUDA GPU; use bf16 or fp32 on the CPU")
    return torch.autocast(device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def loss_fn(logits: torch.Tensor, targets: torch.Tensor, smoothing: float) -> torch.Tensor:
    if targets.ndim == 2:  # soft targets from MixUp/CutMix already carry the smoothing
        return F.cross_entropy(logits.float(), targets)
    return F.cross_entropy(logits.float(), targets, label_smoothing=smoothing)


def eval_augment(aug: AugmentConfig) -> Optional[AugmentConfig]:
    """Validation sees the training geometry without randomness: resized to the training crop size."""
    side = aug.crop or aug.resize
    return AugmentConfig(crop_padding=0, flip="none", resize=side) if side else None


class Trainer:
    """Holds a run's model, optimiser, schedule and pipelines; `fit()` trains to the end."""

    def __init__(self, recipe: Recipe, model: nn.Module, splits, placement: Placement, run_dir: Path, sinks: list[MetricsSink]):
        self.recipe, self.splits, self.place, self.run_dir, self.sinks = recipe, splits, placement, Path(run_dir), sinks
        t, dev = recipe.train, placement.device
        if recipe.model.init == "airbench":
            self._airbench_init(model, splits)
        self.model = model.to(dev, memory_format=torch.channels_last if t.channels_last else torch.preserve_format)
        self.forward_model = self._wrap(self.model)
        if t.batch_size % (t.accumulate * placement.world_size):
            raise CifarlabError(f"train.batch_size={t.batch_size} must divide into train.accumulate={t.accumulate} "
                                f"micro-batches on each of {placement.world_size} processes")
        common = dict(num_classes=splits.num_classes, mean=splits.mean, std=splits.std, channels_last=t.channels_last)
        self.train_batches = BatchPipeline(
            splits.train_images.to(dev), splits.train_labels, batch_size=t.batch_size,
            augment=recipe.augment, label_smoothing=t.label_smoothing, seed=recipe.seed,
            rank=placement.rank, world_size=placement.world_size, **common,
        )
        self.val_batches = None
        if len(splits.val_images):
            self.val_batches = BatchPipeline(
                splits.val_images.to(dev), splits.val_labels, batch_size=recipe.eval.batch_size,
                augment=eval_augment(recipe.augment), shuffle=False, drop_last=False, **common,
            )
        self.steps_per_epoch = len(self.train_batches)
        self.total_steps = t.steps or max(math.ceil(t.epochs * self.steps_per_epoch), 1)
        self.lr = peak_lr(recipe.optim, t.batch_size)
        self.optimizer = build_optimizer(self.model, recipe.optim, self.lr)
        self.schedule = LrSchedule(recipe.schedule, self.lr, self.total_steps, self.steps_per_epoch, recipe.schedule.boundaries)
        self.scaler = torch.amp.GradScaler(dev.type, enabled=t.precision == "fp16")
        self.ema = ModelEMA(self.model, decay=t.ema_decay) if t.ema_decay else None
        self.lookahead = Lookahead(self.model, self.total_steps) if t.lookahead else None
        self.progress = Progress()

    def _airbench_init(self, model: nn.Module, splits) -> None:
        """Identity 3x3 convs and a frozen whitening layer fitted to 5,000 training images, as the model sees them."""
        g = torch.Generator().manual_seed(self.recipe.seed)
        pick = torch.randperm(len(splits.train_images), generator=g)[:5000]
        x = splits.train_images[pick].float().div_(255)
        mean = torch.tensor(splits.mean).view(1, -1, 1, 1)
        std = torch.tensor(splits.std).view(1, -1, 1, 1)
        init_airbench(model, (x - mean) / std)

    def _wrap(self, model: nn.Module) -> nn.Module:
        if self.place.world_size > 1:
            ids = [self.place.device.index] if self.place.device.type == "cuda" else None
            model = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        return torch.compile(model) if self.recipe.train.compile else model

    # ---- checkpoints -------------------------------------------------------------------------

    def state(self) -> dict:
        return dict(
            model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
            schedule=self.schedule.state_dict(), scaler=self.scaler.state_dict(),
            ema=self.ema.state_dict() if self.ema else None, rng=ckpt_io.rng_state(),
            lookahead=self.lookahead.state_dict() if self.lookahead else None,
            progress=vars(self.progress).copy(), model_name=self.recipe.model.name,
            num_classes=self.splits.num_classes, classes=self.splits.classes,
            mean=self.splits.mean, std=self.splits.std, recipe_name=self.recipe.name,
        )

    def save(self, name: str) -> None:
        if self.place.is_main:
            ckpt_io.save_checkpoint(self.run_dir / name, **self.state())

    def restore(self, path: Path) -> None:
        state = ckpt_io.load_checkpoint(path)
        ckpt_io.load_model_state(self.model, state["model"], str(path))
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema and state["ema"]:
            self.ema.load_state_dict(state["ema"])
        if self.lookahead and state.get("lookahead"):
            self.lookahead.load_state_dict(state["lookahead"])
        ckpt_io.set_rng_state(state["rng"])
        self.progress = Progress(**state["progress"])

    # ---- the loop ----------------------------------------------------------------------------

    def fit(self, stop_after: Optional[int] = None) -> str:
        """Train to the last step; returns "finished", or "stopped" after Ctrl-C or `stop_after` steps."""
        t, dev = self.recipe.train, self.place.device
        spe = self.steps_per_epoch
        for sink in self.sinks:
            sink.start(self.total_steps, self.progress.step)
        window = _Window(dev)
        with StopRequest() as stop:
            while self.progress.step < self.total_steps:
                epoch, in_epoch = divmod(self.progress.step, spe)
                for batch in self.train_batches.epoch(epoch, start=in_epoch):
                    if self.progress.step >= self.total_steps:
                        break
                    self._step(batch, window)
                    step = self.progress.step
                    if step % t.log_every == 0 or step == self.total_steps:
                        self._log_step(window)
                    if step % spe == 0 or step == self.total_steps:
                        self._end_epoch(window)
                    if stop.requested or (stop_after is not None and step >= stop_after):
                        self._check_finite(window)
                        self.save("last.pt")
                        return "stopped"
        if self.lookahead is not None and not self.progress.finished:
            self._finish_lookahead()
        return "finished"

    def _finish_lookahead(self) -> None:
        """Put the slow weights into the model; they are the run's final weights (and may be its best)."""
        self.lookahead.finish(self.model)
        self.progress.finished = True
        if self.val_batches is not None:
            _, val_top1 = self.validate(self.model)
            if val_top1 > self.progress.best_val_top1:
                self.progress.best_val_top1, self.progress.best_step = val_top1, self.progress.step
                self.save("best.pt")
        self.save("last.pt")

    def _step(self, batch, window: "_Window") -> None:
        """One optimiser step; with accumulation, the batch is split into micro-batches (BiT batch_split)."""
        t = self.recipe.train
        set_lr(self.optimizer, self.schedule.lr_at(self.progress.step))
        self.model.train()
        acc = t.accumulate
        ddp = isinstance(self.forward_model, nn.parallel.DistributedDataParallel)
        for i, (x, y, labels) in enumerate(zip(*(part.chunk(acc) for part in batch))):
            sync = i == acc - 1 or not ddp  # all-reduce gradients once, on the last micro-batch
            with (nullcontext() if sync else self.forward_model.no_sync()), autocast_for(self.place.device, t.precision):
                logits = self.forward_model(x)
                loss = loss_fn(logits, y, t.label_smoothing)
            self.scaler.scale(loss / acc).backward()
            window.add(loss.detach(), logits.detach(), labels, self.progress.step)
        if t.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            params = [p for p in self.model.parameters() if p.grad is not None]
            if t.grad_clip_mode == "norm":
                torch.nn.utils.clip_grad_norm_(params, t.grad_clip)
            else:
                torch.nn.utils.clip_grad_value_(params, t.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        if self.ema:
            self.ema.update(self.model)
        self.progress.step += 1
        if self.lookahead is not None:
            self.lookahead.step(self.model, self.progress.step)

    def _check_finite(self, window: "_Window") -> None:
        bad = window.first_nonfinite()
        if bad is not None:
            last = self.run_dir / "last.pt"
            kept = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written before it"
            raise CifarlabError(
                f"the loss became NaN or infinite at step {bad}; {kept}. "
                "Lower optim.lr, add train.grad_clip, or use train.precision=fp32"
            )

    def _log_step(self, window: "_Window") -> None:
        self._check_finite(window)
        record = window.flush(kind="step", step=self.progress.step, lr=self.schedule.lr_at(self.progress.step - 1),
                              epoch=self.progress.step / self.steps_per_epoch)
        self._emit(record)

    def _end_epoch(self, window: "_Window") -> None:
        self._check_finite(window)
        step = self.progress.step
        epoch = math.ceil(step / self.steps_per_epoch)
        val_loss = val_top1 = None
        if self.val_batches is not None and (epoch % self.recipe.train.eval_every == 0 or step == self.total_steps):
            val_loss, val_top1 = self.validate(self.model)
            self.schedule.on_validation(val_loss)
            if val_top1 > self.progress.best_val_top1:
                self.progress.best_val_top1, self.progress.best_step = val_top1, step
                self.save("best.pt")
        record = window.epoch_summary(step=step, epoch=epoch, lr=self.schedule.lr_at(step - 1))
        record.update(val_loss=val_loss, val_top1=val_top1)
        if self.ema is not None and self.val_batches is not None and val_loss is not None:
            record["ema_val_loss"], record["ema_val_top1"] = self.validate(self.ema.module)
        every = self.recipe.train.checkpoint_every
        if step == self.total_steps or (every and epoch % every == 0):
            self.save("last.pt")
        self._emit(record)

    def _emit(self, record: dict) -> None:
        if self.place.is_main:
            for sink in self.sinks:
                sink.log(record)

    @torch.no_grad()
    def validate(self, model: nn.Module) -> tuple[float, float]:
        """Mean loss and top-1 over every validation image."""
        was_training = model.training
        model.eval()
        loss = correct = 0.0
        with autocast_for(self.place.device, self.recipe.train.precision):
            for batch in self.val_batches.epoch(0):
                logits = model(batch.inputs).float()
                loss += F.cross_entropy(logits, batch.labels, reduction="sum")
                correct += (logits.argmax(1) == batch.labels).sum()
        model.train(was_training)
        n = len(self.val_batches.images)
        return float(loss) / n, float(correct) / n


class _Window:
    """Loss, accuracy and throughput accumulated on the device between log points."""

    def __init__(self, device: torch.device):
        self.device = device
        self.bad_step = torch.full((), -1, dtype=torch.long, device=device)
        self._reset_window()
        self._reset_epoch()

    def _reset_window(self):
        self.loss = torch.zeros((), device=self.device)
        self.correct = torch.zeros((), device=self.device)
        self.count, self.batches, self.t0 = 0, 0, time.perf_counter()

    def _reset_epoch(self):
        self.e_loss = torch.zeros((), device=self.device)
        self.e_correct = torch.zeros((), device=self.device)
        self.e_count, self.e_batches, self.e_t0 = 0, 0, time.perf_counter()

    def add(self, loss, logits, labels, step: int) -> None:
        correct = (logits.argmax(1) == labels).sum()
        self.loss += loss
        self.correct += correct
        self.e_loss += loss
        self.e_correct += correct
        n = len(labels)
        self.count, self.batches, self.e_count, self.e_batches = self.count + n, self.batches + 1, self.e_count + n, self.e_batches + 1
        # Remember the first non-finite step without a host sync.
        bad = ~torch.isfinite(loss) & (self.bad_step < 0)
        self.bad_step = torch.where(bad, torch.full_like(self.bad_step, step + 1), self.bad_step)

    def first_nonfinite(self) -> Optional[int]:
        bad = int(self.bad_step)
        return bad if bad >= 0 else None

    def flush(self, **fields) -> dict:
        elapsed = time.perf_counter() - self.t0
        record = dict(fields, loss=float(self.loss) / max(self.batches, 1), train_top1=float(self.correct) / max(self.count, 1),
                      images_per_s=self.count / max(elapsed, 1e-9))
        self._reset_window()
        return record

    def epoch_summary(self, **fields) -> dict:
        elapsed = time.perf_counter() - self.e_t0
        record = dict(fields, kind="epoch", loss=float(self.e_loss) / max(self.e_batches, 1),
                      train_top1=float(self.e_correct) / max(self.e_count, 1), images_per_s=self.e_count / max(elapsed, 1e-9), time_s=elapsed)
        self._reset_epoch()
        return record
