"""Batch pipeline and training-step throughput: cifarlab against a torchvision DataLoader + Pillow reference.

Both paths do the same augmentation (pad-4 random crop, horizontal flip, 8x8 Cutout, normalisation)
on the same CIFAR-10 training images; the step measurements train the same model with the same
optimiser. Every figure is a median over --repeats timings taken in this one run, and each line
prints the ratio cifarlab / reference.

    python bench/pipeline.py                      # CPU, this machine
    python bench/pipeline.py --device cuda        # GPU: cifarlab adds bf16 + channels_last
    python bench/pipeline.py --device cuda --synthetic --compile   # and the model under torch.compile
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics

import numpy as np
import torch
from common import time_batches
from PIL import Image

from cifarlab.config.recipe import AugmentConfig, OptimConfig
from cifarlab.data import channel_stats, load_dataset
from cifarlab.data.pipeline import BatchPipeline
from cifarlab.models import create
from cifarlab.training.losses import get_loss
from cifarlab.training.optim import build_optimizer
from cifarlab.training.step import autocast_for


class PilCifar(torch.utils.data.Dataset):
    """The classic path: a uint8 HWC array, one PIL image per item, per-image transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


class Cutout:
    """Per-image Cutout on a CHW tensor, as the reference implementations write it."""

    def __init__(self, size: int):
        self.size = size

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[1:]
        y, x = np.random.randint(h), np.random.randint(w)
        y0, y1 = max(0, y - self.size // 2), min(h, y + self.size // 2)
        x0, x1 = max(0, x - self.size // 2), min(w, x + self.size // 2)
        img[:, y0:y1, x0:x1] = 0
        return img


def reference_loader(images, labels, mean, std, batch_size, workers, pin):
    import torchvision.transforms as T

    transform = T.Compose([T.RandomCrop(32, padding=4, padding_mode="reflect"), T.RandomHorizontalFlip(),
                           T.ToTensor(), T.Normalize(mean, std), Cutout(8)])
    ds = PilCifar(images.permute(0, 2, 3, 1).numpy(), labels.numpy(), transform)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, drop_last=True,
                                       num_workers=workers, pin_memory=pin)


def make_step(model, device, precision, channels_last):
    opt = build_optimizer(model, OptimConfig(name="sgd", lr=0.01, nesterov=True), 0.01)

    def step(batch):
        x, y = batch[0].to(device, non_blocking=True), batch[1].to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast_for(device, precision):
            loss = get_loss("cross_entropy")(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def synthetic_cifar10():
    from cifarlab.data import Dataset

    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (50000, 3, 32, 32), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (50000,), generator=g)
    return Dataset("synthetic", [str(c) for c in range(10)], images, labels, images[:10000], labels[:10000])


def forever(make_iter):
    while True:
        yield from make_iter()


def paired_medians(ours_fn, ref_fn, repeats: int) -> tuple[float, float]:
    """Alternate the two measurements so that a change in machine load hits both alike."""
    ours, ref = [], []
    for _ in range(repeats):
        ref.append(ref_fn())
        ours.append(ours_fn())
    return statistics.median(ours), statistics.median(ref)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--pipeline-batches", type=int, default=100)
    ap.add_argument("--steps", type=int, default=None, help="timed training steps per repeat (default: 4 on CPU, 50 on GPU)")
    ap.add_argument("--warmup-steps", type=int, default=None, help="untimed steps first (default: 1 on CPU, 10 on GPU)")
    ap.add_argument("--compile", action="store_true", help="also time cifarlab's step with the model under torch.compile")
    ap.add_argument("--compile-mode", default=None, help="torch.compile mode, e.g. reduce-overhead (CUDA graphs), max-autotune")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=min(os.cpu_count() or 1, 8))
    ap.add_argument("--models", nargs="+", default=["resnet9", "resnet18"])
    ap.add_argument("--synthetic", action="store_true",
                    help="random images of CIFAR-10's shape instead of the dataset (throughput does not depend on pixels)")
    args = ap.parse_args()
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    steps = args.steps or (50 if gpu else 4)
    warmup = args.warmup_steps or (10 if gpu else 1)
    torch.backends.cudnn.benchmark = True  # both sides: autotuned convolutions
    torch.manual_seed(0)
    ds = synthetic_cifar10() if args.synthetic else load_dataset("cifar10")
    mean, std = (tuple(float(v) for v in t) for t in channel_stats(ds.train_images))
    aug = AugmentConfig(crop_padding=4, pad_mode="reflect", flip="random", cutout=8)
    pipe = BatchPipeline(ds.train_images.to(device), ds.train_labels, batch_size=args.batch_size, num_classes=10,
                         mean=mean, std=std, augment=aug, channels_last=gpu)
    ours_batches = lambda: forever(lambda: (tuple(b) for b in pipe.epoch(np.random.randint(1 << 30))))
    ref = reference_loader(ds.train_images, ds.train_labels, mean, std, args.batch_size, args.workers, gpu)
    ref_batches = lambda: forever(lambda: iter(ref))
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, device {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if gpu else ''}; torch {torch.__version__}")
    print(f"reference: torchvision DataLoader, {args.workers} workers, Pillow transforms; batch {args.batch_size}; "
          f"median of {args.repeats}")
    n = args.pipeline_batches
    ours, theirs = paired_medians(lambda: time_batches(ours_batches(), n, device=device),
                                  lambda: time_batches(ref_batches(), n), args.repeats)
    print(f"pipeline alone        cifarlab {ours:10.0f} img/s   reference {theirs:8.0f} img/s   ratio {ours / theirs:6.1f}x")
    for name in args.models:
        ref_model = create(name, num_classes=10).to(device)
        ref_step = make_step(ref_model, device, "fp32", channels_last=False)
        variants = [("", False)] + ([(" + compile", True)] if args.compile else [])
        for label, compiled in variants:
            model = create(name, num_classes=10).to(device)
            precision = "bf16" if gpu else "fp32"
            if gpu:
                model = model.to(memory_format=torch.channels_last)
            if compiled:
                model = torch.compile(model, mode=args.compile_mode)
            ours_step = make_step(model, device, precision, channels_last=gpu)
            # Default arguments bind this iteration's steps (the lambdas run inside paired_medians, now).
            ours, theirs = paired_medians(
                lambda step=ours_step: time_batches(ours_batches(), steps, step, device, warmup),
                lambda step=ref_step: time_batches(ref_batches(), steps, step, device, warmup), args.repeats)
            note = ("bf16+channels_last vs fp32" if gpu else "fp32 both") + label
            print(f"train step {name:10s} cifarlab {ours:10.0f} img/s   reference {theirs:8.0f} img/s   "
                  f"ratio {ours / theirs:6.2f}x  ({note})")


if __name__ == "__main__":
    main()
