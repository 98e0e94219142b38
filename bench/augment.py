"""Heavy augmentation throughput: cifarlab's batched per-image ops against a DataLoader + Pillow/torchvision-v2 path.

Both paths apply the same ops with the same probabilities to the same CIFAR-10 training images:
horizontal flip, random-resized crop, rotation, colour jitter (brightness, contrast, saturation, hue),
JPEG (quality 30-90), Gaussian noise, random erasing, then normalisation; each policy line compares
the policy alone (plus flip). CLAHE is left out of both: torchvision has no CLAHE. The reference is a
torch DataLoader with --workers worker processes (0: in the main process) running torchvision.transforms.v2
on one Pillow image at a time; cifarlab runs in the calling process on --device. Every figure is the
median of --repeats timings taken alternately in this one run, and each line prints cifarlab / reference.

    OMP_NUM_THREADS=1 python bench/augment.py --images 2048       # a quick look on a shared machine
    python bench/augment.py --images 20480 --workers 2            # the README figure, machine otherwise idle
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

from cifarlab.config.recipe import AugmentConfig
from cifarlab.data import channel_stats, load_dataset
from cifarlab.data.pipeline import BatchPipeline

P = 0.5  # probability of every op, both paths
OPS = [
    {"name": "random_resized_crop", "p": P, "scale": [0.35, 1.0], "ratio": [0.75, 4 / 3]},
    {"name": "rotate", "p": P, "degrees": 15},
    {"name": "color_jitter", "p": P, "brightness": 0.2, "contrast": 0.2, "saturation": 0.2, "hue": 0.05},
    {"name": "jpeg", "p": P, "quality": [30, 90]},
    {"name": "gaussian_noise", "p": P, "std": [0.03, 0.03]},
    {"name": "random_erasing", "p": P, "area": [0.02, 0.33], "ratio": [0.3, 3.3], "fill": "random"},
]
POLICIES = ["none", "randaugment", "trivialaugment", "augmix"]


class PilCifar(torch.utils.data.Dataset):
    """The classic path: a uint8 HWC array, one Pillow image per item, per-image transforms."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.images[i])), int(self.labels[i])


def reference_transform(policy: str, mean, std):
    """torchvision.transforms.v2 doing what the cifarlab recipe of `policy` does."""
    from torchvision.transforms import v2

    steps = [v2.RandomHorizontalFlip()]
    if policy == "none":
        steps += [
            v2.RandomApply([v2.RandomResizedCrop(32, scale=(0.35, 1.0), ratio=(0.75, 4 / 3), antialias=True)], p=P),
            v2.RandomApply([v2.RandomRotation(15)], p=P),
            v2.RandomApply([v2.ColorJitter(0.2, 0.2, 0.2, 0.05)], p=P),
            v2.PILToTensor(),
            v2.RandomApply([v2.JPEG((30, 90))], p=P),
            v2.ToDtype(torch.float32, scale=True),
            v2.RandomApply([v2.GaussianNoise(sigma=0.03)], p=P),
            v2.RandomErasing(p=P, scale=(0.02, 0.33), ratio=(0.3, 3.3), value="random"),
        ]
    else:
        chosen = {"randaugment": v2.RandAugment(), "trivialaugment": v2.TrivialAugmentWide(), "augmix": v2.AugMix()}
        steps += [chosen[policy], v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]
    return v2.Compose(steps + [v2.Normalize(mean, std)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu", help="where cifarlab augments (the reference always runs on the CPU)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--images", type=int, default=4096, help="images per timing (whole batches)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--workers", type=int, default=2, help="reference DataLoader worker processes (0: main process)")
    ap.add_argument("--policies", nargs="+", default=POLICIES, choices=POLICIES)
    args = ap.parse_args()
    device = torch.device(args.device)
    ds = load_dataset("cifar10")
    mean, std = (tuple(float(v) for v in t) for t in channel_stats(ds.train_images))
    n_batches = max(1, args.images // args.batch_size)
    # The reference and cifarlab see the same images: the first (n_batches + 1) batches' worth.
    count = (n_batches + 1) * args.batch_size
    images, labels = ds.train_images[:count], ds.train_labels[:count]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, cifarlab on {device}"
          f"{' (' + torch.cuda.get_device_name(device) + ')' if device.type == 'cuda' else ''}; torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}")
    print(f"reference: DataLoader, num_workers={args.workers}, Pillow + torchvision.transforms.v2 per image; "
          f"batch {args.batch_size}, {n_batches * args.batch_size} images per timing, median of {args.repeats}")
    for policy in args.policies:
        augment = AugmentConfig(crop_padding=0, flip="random", ops=OPS if policy == "none" else [], policy=policy)
        pipe = BatchPipeline(images.to(device), labels, batch_size=args.batch_size, num_classes=10,
                             mean=mean, std=std, augment=augment)
        reference = torch.utils.data.DataLoader(
            PilCifar(images.permute(0, 2, 3, 1).numpy(), labels.numpy(), reference_transform(policy, mean, std)),
            batch_size=args.batch_size, shuffle=True, drop_last=True, num_workers=args.workers)
        ours, theirs = [], []
        for repeat in range(args.repeats):  # alternate, so a change in machine load hits both alike
            theirs.append(time_batches(reference, n_batches))
            ours.append(time_batches(pipe.epoch(repeat), n_batches, device=device))
        ours_median, theirs_median = statistics.median(ours), statistics.median(theirs)
        label = "ops (listed above)" if policy == "none" else policy
        print(f"{label:20s} cifarlab {ours_median:9.0f} img/s   reference {theirs_median:8.0f} img/s   "
              f"ratio {ours_median / theirs_median:5.1f}x")


if __name__ == "__main__":
    main()
