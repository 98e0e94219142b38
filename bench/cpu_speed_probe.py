"""How fast can the airbench recipe train CIFAR-10 here? A self-contained probe.

    python bench/cpu_speed_probe.py speed [--batch 512] [--widths 1,0.5,0.25]
    python bench/cpu_speed_probe.py train --width 0.5 --epochs 4 [--tta 2]

`speed` times training steps (images/s, median of repeats) for precision x memory
format x width. `train` runs the whole airbench94 recipe (patch whitening, identity
init, frozen BN scales, 64x lr on BN shifts, Nesterov SGD with decoupled lr/wd,
triangular schedule, lookahead, label smoothing 0.2, alternating flip, reflect-pad-2
translate, flip+translate TTA) and prints one JSON line with accuracies and times.
Plain torch plus cifarlab's airbench pieces; the data stay uint8 tensors, every
augmentation is a batched tensor op.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import resource
import statistics
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cifarlab.models import create
from cifarlab.models.whitening import init_airbench
from cifarlab.training.averaging import Lookahead

MEAN = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
STD = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)


# ---------------------------------------------------------------- data
def _decode_zip(zip_path: Path) -> dict[str, np.ndarray]:
    from PIL import Image

    out: dict[str, list] = {}
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(n for n in zf.namelist() if not n.endswith("/"))
        classes = sorted({n.split("/")[1] for n in names})
        for name in names:
            split, cls = name.split("/")[:2]
            img = np.asarray(Image.open(io.BytesIO(zf.read(name))).convert("RGB"))
            out.setdefault(split, []).append((img, classes.index(cls)))
    arrays = {}
    for split, items in out.items():
        arrays[f"{split}_x"] = np.stack([i for i, _ in items]).transpose(0, 3, 1, 2).copy()
        arrays[f"{split}_y"] = np.array([c for _, c in items], dtype=np.int64)
    return arrays


def load_cifar10() -> dict[str, torch.Tensor]:
    """CIFAR-10 as uint8 (N, 3, 32, 32) images and int64 labels.

    Through cifarlab's own loader when this checkout has it; otherwise the shared zip is
    decoded here once into an .npz cache (PROBE_CACHE), so the probe runs on its own.
    """
    try:
        from cifarlab.data import load_dataset
    except ImportError:
        load_dataset = None
    if load_dataset is not None and "PROBE_CACHE" not in os.environ:
        ds = load_dataset("cifar10", download=False)
        return {"train_x": ds.train_images, "train_y": ds.train_labels,
                "test_x": ds.test_images, "test_y": ds.test_labels}
    cache = Path(os.environ.get("PROBE_CACHE", "/tmp/cifarlab_probe_cifar10.npz"))
    if not cache.exists():
        zip_path = Path(os.environ.get("CIFARLAB_DATA", "/work/shared/data")) / "cifar10.zip"
        arrays = _decode_zip(zip_path)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, **arrays)
        tmp.rename(cache)
    with np.load(cache) as z:
        return {k: torch.from_numpy(z[k]) for k in z.files}


def normalise(x_uint8: torch.Tensor) -> torch.Tensor:
    return (x_uint8.float() / 255 - MEAN.to(x_uint8.device)) / STD.to(x_uint8.device)


class Batches:
    """Shuffled training batches: normalise, alternating flip, reflect-pad-2 random translate."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch: int, translate: int = 2, seed: int = 0):
        self.x, self.y, self.batch, self.translate = x, y, batch, translate
        self.gen = torch.Generator().manual_seed(seed)
        # Alternating flip: a fixed random half flipped on even epochs, the other half on odd ones.
        self.base_flip = torch.rand(len(x), generator=self.gen) < 0.5
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.x) // self.batch  # drop the last partial batch, as airbench does

    def _augment(self, idx: torch.Tensor) -> torch.Tensor:
        imgs = normalise(self.x[idx])
        flip = self.base_flip[idx] ^ bool(self.epoch % 2)
        imgs = torch.where(flip.view(-1, 1, 1, 1).to(imgs.device), imgs.flip(-1), imgs)
        r = self.translate
        if r:
            n, c, h, w = imgs.shape
            padded = F.pad(imgs, (r, r, r, r), mode="reflect")
            dy = torch.randint(0, 2 * r + 1, (n,), generator=self.gen).to(imgs.device)
            dx = torch.randint(0, 2 * r + 1, (n,), generator=self.gen).to(imgs.device)
            rows = (dy[:, None] + torch.arange(h, device=imgs.device)).view(n, 1, h, 1)
            imgs = padded.gather(2, rows.expand(n, c, h, w + 2 * r))
            cols = (dx[:, None] + torch.arange(w, device=imgs.device)).view(n, 1, 1, w)
            imgs = imgs.gather(3, cols.expand(n, c, h, w))
        return imgs

    def __iter__(self):
        order = torch.randperm(len(self.x), generator=self.gen)
        for i in range(len(self)):
            idx = order[i * self.batch : (i + 1) * self.batch]
            yield self._augment(idx), self.y[idx]
        self.epoch += 1


# ---------------------------------------------------------------- recipe
def make_optimiser(model: nn.Module, batch: int, lr: float, wd: float, momentum: float, bias_scaler: float):
    """Nesterov SGD in airbench's decoupled form: lr and wd are per 1024 examples of summed loss."""
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr_sgd, wd_step = lr / kilostep, wd * batch / kilostep
    norm_biases = [p for n, p in model.named_parameters() if "norm" in n and p.requires_grad]
    others = [p for n, p in model.named_parameters() if "norm" not in n and p.requires_grad]
    groups = [
        dict(params=norm_biases, lr=lr_sgd * bias_scaler, weight_decay=wd_step / (lr_sgd * bias_scaler)),
        dict(params=others, lr=lr_sgd, weight_decay=wd_step / lr_sgd),
    ]
    return torch.optim.SGD(groups, momentum=momentum, nesterov=True)


def triangle(step: int, total: int, start: float = 0.2, peak_at: float = 0.23, end: float = 0.07) -> float:
    """Linear warmup from `start` to 1 at `peak_at` of the run, then linear down to `end`."""
    peak = int(peak_at * total)
    if step < peak:
        return start + (1 - start) * step / peak
    return 1 + (end - 1) * (step - peak) / max(1, total - peak)


def autocast(device: str, bf16: bool):
    return torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16)


@torch.no_grad()
def evaluate(model, x, y, device, bf16, channels_last, tta: int, batch: int = 1000) -> float:
    """Top-1 on (x, y); tta 0 none, 1 mirror, 2 mirror + 1-pixel translates (airbench's level 2)."""
    model.eval()
    fmt = torch.channels_last if channels_last else torch.contiguous_format

    def logits(inputs):
        return model(inputs.contiguous(memory_format=fmt)).float()

    def mirror(inputs):
        return logits(inputs) if tta == 0 else 0.5 * (logits(inputs) + logits(inputs.flip(-1)))

    correct = 0
    for i in range(0, len(x), batch):
        inputs = normalise(x[i : i + batch].to(device))
        with autocast(device, bf16):
            out = mirror(inputs)
            if tta >= 2:
                padded = F.pad(inputs, (1, 1, 1, 1), mode="reflect")
                shifted = [mirror(padded[:, :, 0:32, 0:32]), mirror(padded[:, :, 2:34, 2:34])]
                out = 0.5 * out + 0.25 * (shifted[0] + shifted[1])
        correct += (out.argmax(1).cpu() == y[i : i + batch]).sum().item()
    return correct / len(x)


def build(args, data, device):
    model = create("airbench94", width_multiplier=args.width).to(device)
    init_airbench(model, normalise(data["train_x"][:5000]).to(device))
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    return model


def train(args) -> dict:
    torch.manual_seed(args.seed)
    device = args.device
    t_load = time.perf_counter()
    data = load_cifar10()
    xtr, ytr = data["train_x"].to(device), data["train_y"].to(device)
    load_s = time.perf_counter() - t_load
    t0 = time.perf_counter()
    model = build(args, data, device)
    batches = Batches(xtr, ytr, args.batch, seed=args.seed)
    total = math.ceil(len(batches) * args.epochs)
    opt = make_optimiser(model, args.batch, args.lr, args.wd, args.momentum, args.bias_scaler)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: triangle(s, total))
    lookahead = Lookahead(model, total) if args.lookahead else None
    loss_fn = nn.CrossEntropyLoss(label_smoothing=args.label_smoothing, reduction="sum")
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    step, epoch_times = 0, []
    while step < total:
        model.train()
        model.whiten.bias.requires_grad_(batches.epoch < args.whiten_bias_epochs)
        te = time.perf_counter()
        for inputs, labels in batches:
            with autocast(device, args.bf16):
                loss = loss_fn(model(inputs.contiguous(memory_format=fmt)), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if lookahead:
                lookahead.step(model, step)
            if args.verbose and (step % 10 == 0 or step < 10):
                print(f"  step {step} {time.perf_counter() - te:.1f}s into epoch", flush=True)
            if step >= total:
                break
        if device == "cuda":
            torch.cuda.synchronize()
        epoch_times.append(time.perf_counter() - te)
        if not math.isfinite(loss.item()):
            raise SystemExit(f"loss became {loss.item()} at step {step}; lower --lr")
        if args.verbose:
            print(f"epoch {len(epoch_times)} step {step}/{total} loss {loss.item() / args.batch:.3f} "
                  f"{epoch_times[-1]:.1f}s", flush=True)
    if lookahead:
        lookahead.finish(model)
    train_s = time.perf_counter() - t0
    xte, yte = data["test_x"], data["test_y"]
    te = time.perf_counter()
    acc = evaluate(model, xte, yte, device, args.bf16, args.channels_last, tta=0)
    eval_s = time.perf_counter() - te
    te = time.perf_counter()
    acc_tta = evaluate(model, xte, yte, device, args.bf16, args.channels_last, tta=args.tta)
    tta_s = time.perf_counter() - te
    return dict(
        width=args.width, widths=list(model.widths), epochs=args.epochs, batch=args.batch, lr=args.lr,
        bf16=args.bf16, channels_last=args.channels_last, lookahead=args.lookahead, device=device,
        threads=torch.get_num_threads(), steps=total, test_acc=acc, test_acc_tta=acc_tta, tta=args.tta,
        train_s=round(train_s, 1), epoch_s=[round(t, 1) for t in epoch_times], eval_s=round(eval_s, 1),
        tta_eval_s=round(tta_s, 1), load_s=round(load_s, 1),
        max_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
    )


# ---------------------------------------------------------------- speed
def time_steps(width: float, batch: int, bf16: bool, channels_last: bool, steps: int, repeats: int, device: str):
    """Median images/s of a full training step (augment + forward + backward + SGD) over repeats."""
    data = load_cifar10()
    args = argparse.Namespace(width=width, channels_last=channels_last)
    model = build(args, data, device)
    model.train()
    opt = make_optimiser(model, batch, 11.5, 0.0153, 0.85, 64.0)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2, reduction="sum")
    batches = Batches(data["train_x"][:batch * (steps + 2)].to(device), data["train_y"][:batch * (steps + 2)].to(device), batch)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    rates, cpu_rates = [], []
    for r in range(repeats + 1):  # the first round warms up oneDNN's kernel caches
        it = iter(batches)
        t, c = time.perf_counter(), time.process_time()
        for _ in range(steps):
            inputs, labels = next(it)
            with autocast(device, bf16):
                loss = loss_fn(model(inputs.contiguous(memory_format=fmt)), labels)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        if device == "cuda":
            torch.cuda.synchronize()
        if r:
            rates.append(steps * batch / (time.perf_counter() - t))
            cpu_rates.append(steps * batch / (time.process_time() - c))
    # Images per CPU-second: on a shared machine, wall time counts others' load too.
    return statistics.median(rates), rates, statistics.median(cpu_rates)


def speed(args) -> None:
    for width in [float(w) for w in args.widths.split(",")]:
        for bf16 in (False, True):
            for cl in (False, True):
                if args.only_best and not (bf16 and cl):
                    continue
                med, rates, cpu = time_steps(width, args.batch, bf16, cl, args.steps, args.repeats, args.device)
                print(json.dumps(dict(width=width, batch=args.batch, bf16=bf16, channels_last=cl,
                                      threads=torch.get_num_threads(), images_per_s=round(med, 1),
                                      repeats=[round(r, 1) for r in rates], images_per_cpu_s=round(cpu, 1),
                                      epoch_s=round(50000 / med, 1))), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("speed", "train"):
        s = sub.add_parser(name)
        s.add_argument("--device", default="cpu")
        s.add_argument("--threads", type=int, default=2)
        s.add_argument("--batch", type=int, default=512)
    sp = sub.choices["speed"]
    sp.add_argument("--widths", default="1,0.5,0.25")
    sp.add_argument("--steps", type=int, default=3)
    sp.add_argument("--repeats", type=int, default=3)
    sp.add_argument("--only-best", action="store_true", help="time only bf16 + channels_last")
    tr = sub.choices["train"]
    tr.add_argument("--width", type=float, default=1.0, help="multiplier on airbench94's widths (64, 256, 256)")
    tr.add_argument("--epochs", type=float, default=9.9)
    tr.add_argument("--lr", type=float, default=11.5, help="per 1024 examples (decoupled)")
    tr.add_argument("--wd", type=float, default=0.0153, help="per 1024 examples (decoupled)")
    tr.add_argument("--momentum", type=float, default=0.85)
    tr.add_argument("--bias-scaler", type=float, default=64.0)
    tr.add_argument("--label-smoothing", type=float, default=0.2)
    tr.add_argument("--whiten-bias-epochs", type=int, default=3)
    tr.add_argument("--tta", type=int, default=2, choices=(0, 1, 2))
    tr.add_argument("--fp32", dest="bf16", action="store_false", help="no bf16 autocast")
    tr.add_argument("--nchw", dest="channels_last", action="store_false", help="no channels_last")
    tr.add_argument("--no-lookahead", dest="lookahead", action="store_false")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.cmd == "speed":
        speed(args)
    else:
        print(json.dumps(train(args)), flush=True)


if __name__ == "__main__":
    main()
