"""The typed recipe: every value a run depends on, with its default and the range it accepts.

A field's `metadata` may hold `min`, `max` (inclusive bounds) and `help`; `Literal` types list the
accepted words. `cifarlab.config.loader` validates YAML and command-line overrides against these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Optional, Union

MAX_IMAGE_PIXELS = 4096 * 4096  # CIFAR-scale folders: far above 32x32, far below a decompression bomb


def bounded(default, lo=None, hi=None, help: str = ""):
    """A field with inclusive numeric bounds checked when a recipe is loaded."""
    return field(default=default, metadata={"min": lo, "max": hi, "help": help})


def setting(default=None, help: str = "", factory=None):
    """A field with one line of help (shown by `cifarlab keys`); `factory` builds a fresh list or dict default."""
    if factory is not None:
        return field(default_factory=factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class DataConfig:
    dataset: str = setting("cifar10", "cifar10, cifar100 or folder:PATH (an image folder or zip laid out split/class/file)")
    root: Optional[str] = setting(None, "folder the dataset sources live in; default $CIFARLAB_DATA, then ~/.cache/cifarlab")
    val_size: int = bounded(5000, 0, help="images held out of training for model selection")
    full_train: bool = setting(False, "train on every training image, no validation split (say why in the recipe)")
    examples_per_class: Optional[int] = bounded(None, 1, help="k-shot subset of the training split")
    subset_seed: Optional[int] = setting(None, "seed of the k-shot subset; default: the run seed")
    train_limit: Optional[int] = bounded(None, 1, help="use only the first N (stratified) training images")
    clahe_clip_limit: Optional[float] = bounded(
        None, 0.1, 100.0, help="CLAHE as normalisation (DL4DS): equalise every image the model sees, in training and in "
                               "every evaluation, with this contrast limit before the mean/std step; null: off")
    clahe_grid: int = bounded(4, 1, 64, help="with data.clahe_clip_limit: tiles per side of the equalisation")
    max_image_pixels: int = bounded(
        MAX_IMAGE_PIXELS, 1, 2**27, help="folder:PATH: an image with more pixels (width x height) is refused before "
                                         "it is decoded; raise it for larger images (at most 2**27)")


@dataclass
class AugmentConfig:
    crop_padding: int = bounded(4, 0, 16, help="pixels padded on each side before the random crop back to size; 0: no crop")
    pad_mode: Literal["reflect", "zeros"] = setting("reflect", "how the crop padding is filled")
    flip: Literal["none", "random", "alternating"] = setting("random", "horizontal flip: none, random per image, or alternating by epoch (airbench)")
    flip_p: float = bounded(0.5, 0.0, 1.0, help="with augment.flip=random: the probability each image is mirrored "
                                                "(DL4DS tunes this 'hflip probability')")
    cutout: int = bounded(0, 0, 32, help="side of the square Cutout hole in pixels; 0 disables")
    cutout_fill: float = bounded(0.0, 0.0, 1.0, help="fill value in [0,1] pixel units")
    resize: Optional[int] = bounded(None, 8, help="resize images to this side before cropping (BiT: 160)")
    crop: Optional[int] = bounded(None, 8, help="random crop side after resize (BiT: 128)")
    progressive_size: Optional[int] = bounded(
        None, 8, help="progressive resizing: train the first augment.progressive_epochs epochs on batches downscaled "
                      "to this side (fewer FLOPs per step), then at full size; null: off")
    progressive_epochs: int = bounded(0, 0, help="epochs trained at augment.progressive_size before full size")
    mixup_alpha: float = bounded(0.0, 0.0, help="MixUp Beta(alpha, alpha) parameter; 0 disables")
    cutmix_alpha: float = bounded(0.0, 0.0, help="CutMix Beta(alpha, alpha) parameter; 0 disables")
    mix_prob: float = bounded(1.0, 0.0, 1.0, help="probability a batch is mixed at all")
    switch_prob: float = bounded(0.5, 0.0, 1.0, help="probability of CutMix rather than MixUp when both are on")
    ops: list[dict[str, Any]] = setting(
        help="heavy per-image ops after crop and flip, in order, e.g. [{name: rotate, p: 0.5, degrees: 15}]: random_resized_crop, "
             "rotate, brightness, contrast, saturation, hue, color_jitter, gaussian_noise, jpeg, clahe, random_erasing "
             "(parameters: cifarlab/config/augment_ops.py)", factory=list)
    policy: Literal["none", "randaugment", "trivialaugment", "augmix"] = setting("none", "augmentation policy applied per image before augment.ops")
    randaugment_ops: int = bounded(2, 1, 8, help="randaugment: ops applied in a row to each image (N)")
    randaugment_magnitude: int = bounded(9, 0, 30, help="randaugment: magnitude bin of every op, 0-30 (M)")
    augmix_width: int = bounded(3, 1, 8, help="augmix: op chains mixed per image (k)")
    augmix_depth: Optional[int] = bounded(None, 1, 8, help="augmix: ops per chain; null: 1 to 3, drawn per image and chain")
    augmix_severity: float = bounded(3.0, 0.1, 10.0, help="augmix: highest op level (levels drawn in [0.1, severity])")
    augmix_alpha: float = bounded(1.0, 0.01, help="augmix: Dirichlet and Beta parameter of the mixing weights")
    augmix_js: bool = setting(False, "augmix: yield clean + two AugMix views of each image for train.loss=augmix_js")


@dataclass
class ModelConfig:
    name: str = setting("resnet18", "registered model name; `cifarlab models` lists them")
    options: dict[str, Any] = setting(help="keyword arguments for the model constructor; `model.options={}` clears them", factory=dict)
    weights: Optional[str] = setting(None, "pretrained weights: an official name (BiT-M-R50x1) or a file")
    init: Literal["default", "airbench"] = setting("default", "airbench: identity 3x3 convs and a frozen patch-whitening first layer")
    freeze: Literal["none", "backbone"] = setting("none", "backbone: train only the classifier head until model.unfreeze_epoch")
    unfreeze_epoch: Optional[int] = bounded(None, 0, help="with model.freeze=backbone: epochs after which the backbone trains too; null: never")
    whiten_bias_epochs: Optional[float] = bounded(
        None, 0, help="with model.init=airbench: epochs the whitening layer's bias trains before it freezes too "
                      "(airbench: 3); null: it trains throughout")


@dataclass
class OptimConfig:
    name: Literal["sgd", "adam", "adamw", "adopt", "adoptw", "adagrad", "adadelta", "slbi", "slbi_adam", "muon"] = setting(
        "sgd", "optimiser (slbi, slbi_adam: DessiLBI's split LBI with SGD momentum or Adam, see cifarlab.training.slbi; "
        "muon: orthogonalised momentum for conv filters, Nesterov SGD for the rest, see cifarlab.training.muon)")
    lr: Union[float, Literal["find"]] = setting(0.1, "learning rate (the peak for One-Cycle); `find` runs the LR range test first")
    momentum: float = bounded(0.9, 0.0, 1.0, help="SGD momentum")
    nesterov: bool = setting(False, "Nesterov momentum (SGD)")
    weight_decay: float = bounded(5e-4, 0.0, help="L2 weight decay (decoupled for adamw and adoptw)")
    betas: list[float] = setting(help="Adam-family moment decay rates", factory=lambda: [0.9, 0.999])
    eps: float = bounded(1e-8, 0.0, help="term added to the denominator (Adam family, Adagrad, Adadelta)")
    no_decay_norm_bias: bool = setting(False, "no weight decay on normalisation weights and biases")
    fused: bool = setting(False, "sgd, adam, adamw: torch's fused kernel, one launch for all parameters "
                                 "(the launch-bound GPU step); same arithmetic as the loop")
    scale_lr_batch: Optional[int] = bounded(None, 1, help="lr is given for this batch size; scale linearly")
    bias_lr_scale: float = bounded(1.0, 0.0, help="lr multiplier for normalisation-layer parameters (airbench: 64)")
    backbone_lr_scale: float = bounded(1.0, 0.0, help="lr multiplier for every parameter outside the classifier head (fine-tuning: 0.1)")
    muon_lr_scale: float = bounded(1.0, 0.0, help="muon: the conv filters' lr as a multiple of the scheduled lr")
    muon_momentum: float = bounded(0.6, 0.0, 1.0, help="muon: momentum of the conv filters (airbench94_muon: 0.6)")
    slbi_kappa: float = bounded(1.0, 1e-12, help="slbi: kappa, scale of the weights' step and of Gamma (DessiLBI: 1)")
    slbi_mu: float = bounded(100.0, 1e-12, help="slbi: mu, coupling of the weights to their sparse copy Gamma; larger grows Gamma's support more slowly")
    slbi_lambda: float = bounded(1.0, 0.0, help="slbi: soft-threshold a filter's (or linear weight's) z must pass to enter Gamma's support")


@dataclass
class ScheduleConfig:
    name: Literal["constant", "onecycle", "cosine", "step", "multistep", "plateau", "piecewise", "hyperrule"] = setting(
        "constant", "lr schedule over training (its keys below say which schedule reads them)")
    warmup_epochs: float = bounded(0.0, 0.0, help="linear warmup from schedule.warmup_start_lr to the lr over these epochs")
    warmup_start_lr: float = bounded(
        0.0, 0.0, help="the lr the warmup starts from (DL4DS tunes this 'warmup start learning rate'); 0: from 0")
    peak_epoch: float = bounded(5.0, 0.0, help="One-Cycle: epoch at which lr peaks")
    anneal: Literal["linear", "cos"] = setting("linear", "One-Cycle: shape of the rise and fall")
    div_factor: float = bounded(25.0, 1.0, help="One-Cycle: initial lr = peak / div_factor")
    final_div_factor: float = bounded(1e4, 1.0, help="One-Cycle: final lr = initial / final_div_factor")
    min_lr: float = bounded(0.0, 0.0, help="cosine: the lr reached at the end of training")
    step_size: int = bounded(30, 1, help="step: epochs between decays")
    milestones: list[int] = setting(help="multistep: epochs at which lr is multiplied by gamma", factory=lambda: [100, 150])
    gamma: float = bounded(0.1, 0.0, 1.0, help="step and multistep: lr multiplier at each decay")
    factor: float = bounded(0.5, 0.0, 1.0, help="plateau: lr multiplier")
    patience: int = bounded(5, 0, help="plateau: epochs without improvement before decay")
    boundaries: Optional[list[int]] = setting(None, "piecewise (alias hyperrule): warmup end, the decay steps, last step")


@dataclass
class TrainConfig:
    epochs: float = bounded(10, 0.0, help="passes over the training images (fractions allowed)")
    steps: Optional[int] = bounded(None, 1, help="train for this many optimiser steps instead of epochs")
    batch_size: int = bounded(128, 1, help="training images per optimiser step (split over accumulate micro-batches and processes)")
    accumulate: int = bounded(1, 1, help="micro-batches per optimiser step (BiT batch_split)")
    precision: Literal["fp32", "bf16", "fp16", "auto"] = setting(
        "fp32", "autocast precision of the forward pass (fp16 adds a loss scaler; auto: bf16 where the CPU or GPU has bf16 units)")
    channels_last: bool = setting(True, "channels_last memory format (faster convolutions on GPU)")
    compile: bool = setting(False, "torch.compile the model")
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] = setting(
        "default", "with train.compile: torch.compile's mode; reduce-overhead replays CUDA graphs (the launch-bound "
                   "batch-128 GPU step), max-autotune also searches kernels")
    grad_clip: Optional[float] = bounded(None, 0.0, help="clip gradients at this norm or value; null: no clipping")
    grad_clip_mode: Literal["norm", "value"] = setting("norm", "clip the global gradient norm or each value")
    loss: str = field(default="cross_entropy", metadata={"help": "cross_entropy, mse, bce or huber (on one-hot targets); see cifarlab.training.losses"})
    label_smoothing: float = bounded(0.0, 0.0, 1.0, help="share of the target spread evenly over all classes")
    ema_decay: Optional[float] = bounded(None, 0.0, 1.0, help="weight EMA, evaluated as its own model")
    lookahead: bool = setting(False, "airbench lookahead: every 5 steps pull towards slow weights, stronger late")
    device: str = setting("auto", "auto, cpu, cuda or cuda:N")
    threads: Optional[int] = bounded(None, 1, help="CPU threads for this run; default: the cores not already busy")
    allocator: Literal["auto", "system"] = setting(
        "auto", "auto: on Linux (glibc) freed activation memory stays in the process instead of being unmapped and "
                "page-faulted back every step (faster CPU steps, resident size stays near its peak); system: the C library's defaults")
    eval_every: int = bounded(1, 1, help="epochs between validation passes")
    log_every: int = bounded(50, 1, help="steps between metrics lines")
    checkpoint_every: int = bounded(1, 0, help="epochs between last.pt saves; 0: only at the end and on Ctrl-C")
    export_npz: bool = setting(False, "also write the final BiT network as weights.npz in the official layout")


@dataclass
class EvalConfig:
    tta: Literal["none", "flip", "flip_translate", "shift16"] = setting("none", "test-time augmentation of the final evaluation")
    batch_size: int = bounded(1000, 1, help="images per evaluation batch")
    test: bool = setting(True, "evaluate the final model on the test set when training ends")
    test_curve: bool = setting(False, "also score the test split at every epoch end (test_loss, test_top1), for "
                               "display only, as the FDU seed's figures show it: nothing selects, stops early "
                               "or lowers the lr on it")


@dataclass
class LogConfig:
    sinks: list[str] = field(default_factory=lambda: ["console", "jsonl", "tensorboard"],
                             metadata={"help": "where metrics go: console, jsonl, tensorboard, csv, wandb, mlflow"})
    project: str = field(default="cifarlab", metadata={"help": "wandb project / mlflow experiment name"})
    tracking_uri: Optional[str] = field(default=None, metadata={
        "help": "mlflow tracking URI (default: $MLFLOW_TRACKING_URI, else mlflow.db in the run folder, artifacts in mlruns/)"})


@dataclass
class FewshotConfig:
    """The axes of a few-shot transfer sweep (`cifarlab fewshot`) and the BiT-HyperRule values it uses."""

    weights: list[str] = setting(help="official names (BiT-M-R50x1), .npz files, or scratch", factory=list)
    shots: list[int] = setting(help="examples per class of each setting", factory=lambda: [1, 5])
    seeds: int = bounded(5, 1, help="runs per setting, seeds 0..seeds-1 (subset and training)")
    hyperrule: bool = setting(True, "steps, resolution, lr and MixUp from BiT-HyperRule; off: the recipe's own")
    precrop: Optional[int] = bounded(None, 8, help="override the HyperRule resize (160 for CIFAR)")
    crop: Optional[int] = bounded(None, 8, help="override the HyperRule crop (128 for CIFAR)")
    boundaries: Optional[list[int]] = setting(None, "override the HyperRule steps (warmup, 3 decays, total)")
    base_lr: float = bounded(0.003, 0.0, help="HyperRule peak lr (BiT: 0.003); fewshot.lr_scaling says how train.batch_size changes it")
    lr_scaling: Literal["none", "linear"] = setting(
        "none", "none: the published BiT rule, fewshot.base_lr at any train.batch_size (google-research/big_transfer); "
                "linear: fewshot.base_lr x train.batch_size / 512")
    with_replacement: bool = setting(
        False, "true: every batch drawn with replacement from the k-shot set (the BiT PyTorch notebook as seeds/000 runs it); false: "
               "shuffled passes, with replacement only when the set is smaller than a batch (bit_pytorch/train.py)")
    eval_every: int = bounded(
        0, 0, help="score the test set every N steps and print `[Step N] loss=... train accu=... test accu=... (lr=...)`; "
                   "display only: a few-shot run selects nothing on it; 0: off")


@dataclass
class Recipe:
    name: str = setting("run", "run name: the run folder is out_dir/name (-2, -3 ... when taken)")
    seed: int = setting(0, "seed of the validation split, initialisation and batch order")
    out_dir: str = setting("runs", "folder that run folders are made in")
    description: str = setting("", "one line about the recipe, shown by `cifarlab recipes`")
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    log: LogConfig = field(default_factory=LogConfig)
    fewshot: FewshotConfig = field(default_factory=FewshotConfig)
