"""The typed recipe: every value a run depends on, with its default and the range it accepts.

A field's `metadata` may hold `min`, `max` (inclusive bounds) and `help`; `Literal` types list the
accepted words. `cifarlab.config.loader` validates YAML and command-line overrides against these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union


def bounded(default, lo=None, hi=None, help: str = ""):
    """A field with inclusive numeric bounds checked when a recipe is loaded."""
    return field(default=default, metadata={"min": lo, "max": hi, "help": help})


@dataclass
class DataConfig:
    dataset: str = "cifar10"  # cifar10, cifar100 or folder:PATH
    root: Optional[str] = None  # where sources live; default $CIFARLAB_DATA, then ~/.cache/cifarlab
    val_size: int = bounded(5000, 0, help="images held out of training for model selection")
    full_train: bool = False  # train on every training image, no validation split (say why in the recipe)
    examples_per_class: Optional[int] = bounded(None, 1, help="k-shot subset of the training split")
    subset_seed: Optional[int] = None  # seed of the k-shot subset; default: the run seed
    train_limit: Optional[int] = bounded(None, 1, help="use only the first N (stratified) training images")


@dataclass
class AugmentConfig:
    crop_padding: int = bounded(4, 0, 16)
    pad_mode: Literal["reflect", "zeros"] = "reflect"
    flip: Literal["none", "random", "alternating"] = "random"
    cutout: int = bounded(0, 0, 32, help="side of the square Cutout hole in pixels; 0 disables")
    cutout_fill: float = bounded(0.0, 0.0, 1.0, help="fill value in [0,1] pixel units")
    resize: Optional[int] = bounded(None, 8, help="resize images to this side before cropping (BiT: 160)")
    crop: Optional[int] = bounded(None, 8, help="random crop side after resize (BiT: 128)")
    mixup_alpha: float = bounded(0.0, 0.0)
    cutmix_alpha: float = bounded(0.0, 0.0)
    mix_prob: float = bounded(1.0, 0.0, 1.0, help="probability a batch is mixed at all")
    switch_prob: float = bounded(0.5, 0.0, 1.0, help="probability of CutMix rather than MixUp when both are on")


@dataclass
class ModelConfig:
    name: str = "resnet18"
    options: dict[str, Any] = field(default_factory=dict)  # passed to the model constructor
    weights: Optional[str] = None  # pretrained weights: an official name or a file
    init: Literal["default", "airbench"] = "default"  # airbench: identity 3x3 convs + frozen patch whitening


@dataclass
class OptimConfig:
    name: Literal["sgd", "adam", "adamw", "adopt", "adoptw", "adagrad", "adadelta"] = "sgd"
    lr: Union[float, Literal["find"]] = 0.1  # `find` runs the LR range test first
    momentum: float = bounded(0.9, 0.0, 1.0)
    nesterov: bool = False
    weight_decay: float = bounded(5e-4, 0.0)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = bounded(1e-8, 0.0)
    no_decay_norm_bias: bool = False  # no weight decay on normalisation weights and biases
    scale_lr_batch: Optional[int] = bounded(None, 1, help="lr is given for this batch size; scale linearly")
    bias_lr_scale: float = bounded(1.0, 0.0, help="lr multiplier for normalisation-layer parameters (airbench: 64)")


@dataclass
class ScheduleConfig:
    name: Literal["constant", "onecycle", "cosine", "step", "multistep", "plateau", "hyperrule"] = "constant"
    warmup_epochs: float = bounded(0.0, 0.0)
    peak_epoch: float = bounded(5.0, 0.0, help="One-Cycle: epoch at which lr peaks")
    anneal: Literal["linear", "cos"] = "linear"
    div_factor: float = bounded(25.0, 1.0, help="One-Cycle: initial lr = peak / div_factor")
    final_div_factor: float = bounded(1e4, 1.0, help="One-Cycle: final lr = initial / final_div_factor")
    min_lr: float = bounded(0.0, 0.0)
    step_size: int = bounded(30, 1, help="step: epochs between decays")
    milestones: list[int] = field(default_factory=lambda: [100, 150])
    gamma: float = bounded(0.1, 0.0, 1.0)
    factor: float = bounded(0.5, 0.0, 1.0, help="plateau: lr multiplier")
    patience: int = bounded(5, 0, help="plateau: epochs without improvement before decay")
    boundaries: Optional[list[int]] = None  # hyperrule: warmup end, decay steps, last step (default: BiT rule)


@dataclass
class TrainConfig:
    epochs: float = bounded(10, 0.0)
    steps: Optional[int] = bounded(None, 1, help="train for this many optimiser steps instead of epochs")
    batch_size: int = bounded(128, 1)
    accumulate: int = bounded(1, 1, help="micro-batches per optimiser step (BiT batch_split)")
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    channels_last: bool = True
    compile: bool = False
    grad_clip: Optional[float] = bounded(None, 0.0)
    grad_clip_mode: Literal["norm", "value"] = "norm"
    label_smoothing: float = bounded(0.0, 0.0, 1.0)
    ema_decay: Optional[float] = bounded(None, 0.0, 1.0, help="weight EMA, evaluated as its own model")
    lookahead: bool = False  # airbench lookahead: every 5 steps pull towards slow weights, stronger late
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    eval_every: int = bounded(1, 1, help="epochs between validation passes")
    log_every: int = bounded(50, 1, help="steps between metrics lines")
    checkpoint_every: int = bounded(1, 0, help="epochs between last.pt saves; 0: only at the end and on Ctrl-C")
    export_npz: bool = False  # also write the final BiT network as weights.npz in the official layout


@dataclass
class EvalConfig:
    tta: Literal["none", "flip", "flip_translate", "shift16"] = "none"
    batch_size: int = bounded(1000, 1)
    test: bool = True  # evaluate the final model on the test set when training ends


@dataclass
class FewshotConfig:
    """The axes of a few-shot transfer sweep (`cifarlab fewshot`) and the BiT-HyperRule values it uses."""

    weights: list[str] = field(default_factory=list)  # official names (BiT-M-R50x1), .npz files, or "scratch"
    shots: list[int] = field(default_factory=lambda: [1, 5])
    seeds: int = bounded(5, 1, help="runs per setting, seeds 0..seeds-1 (subset and training)")
    hyperrule: bool = True  # steps, resolution, lr and MixUp from BiT-HyperRule; off: the recipe's own
    precrop: Optional[int] = bounded(None, 8, help="override the HyperRule resize (160 for CIFAR)")
    crop: Optional[int] = bounded(None, 8, help="override the HyperRule crop (128 for CIFAR)")
    boundaries: Optional[list[int]] = None  # override the HyperRule steps (warmup, 3 decays, total)
    base_lr: float = bounded(0.003, 0.0, help="HyperRule lr at batch 512, scaled with train.batch_size")


@dataclass
class Recipe:
    name: str = "run"
    seed: int = 0
    out_dir: str = "runs"
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    fewshot: FewshotConfig = field(default_factory=FewshotConfig)
