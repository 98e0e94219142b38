"""BiT-R50x1 training-step throughput at 128x128: cifarlab's step against the original code's step.

Reference: what the BiT PyTorch code runs, fp32 weights and activations, channels-first, SGD momentum 0.9.
cifarlab: the same model and optimiser under bf16 autocast, channels-first and channels_last (GroupNorm and
weight standardisation favour channels-first in eager mode), and with `--compile` the same under torch.compile.
Both train on the same device-resident batches, so the ratio is the step itself. Median of --repeats.

    python bench/bit_step.py --device cuda --batch-size 128
    python bench/bit_step.py --device cpu --batch-size 8 --steps 3    # slow, for completeness
"""

from __future__ import annotations

import argparse

import torch
from common import median_seconds
from cpu_peak import peak_gflops, step_flops

from cifarlab.config.recipe import OptimConfig
from cifarlab.models import create
from cifarlab.training.losses import get_loss
from cifarlab.training.optim import build_optimizer
from cifarlab.training.step import autocast_for


def images_per_second(model, x, y, device, precision: str, steps: int, repeats: int) -> float:
    opt = build_optimizer(model, OptimConfig(name="sgd", lr=0.003, momentum=0.9, weight_decay=0.0), 0.003)

    def step():
        with autocast_for(device, precision):
            loss = get_loss("cross_entropy")(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def steps_in_a_row() -> None:
        for _ in range(steps):
            step()

    return steps * len(x) / median_seconds(steps_in_a_row, repeats, device, warmup=1)  # warm-up: compilation too


def var_mean_standardize(weight: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """The textbook weight standardisation (BiT's code): var_mean and two broadcasts."""
    var, mean = torch.var_mean(weight, dim=(1, 2, 3), keepdim=True, unbiased=False)
    return (weight - mean) / torch.sqrt(var + eps)


def standardisation_ratio(model_name: str, x: torch.Tensor, y: torch.Tensor, device: torch.device, steps: int,
                          repeats: int) -> None:
    """fp32 step with cifarlab's batch-norm weight standardisation against the var_mean formulation."""
    from cifarlab.models import bit

    fast = images_per_second(create(model_name, num_classes=10).to(device), x, y, device, "fp32", steps, repeats)
    original = bit.standardize_weight
    bit.standardize_weight = var_mean_standardize
    try:
        slow = images_per_second(create(model_name, num_classes=10).to(device), x, y, device, "fp32", steps, repeats)
    finally:
        bit.standardize_weight = original
    print(f"weight standardisation, fp32 step: var_mean {slow:9.1f} img/s   F.batch_norm {fast:9.1f} img/s   "
          f"ratio {fast / slow:5.2f}x")


def share_of_peak(model_name: str, x: torch.Tensor, y: torch.Tensor, device: torch.device):
    """On a CPU: a function giving ', N GFLOP/s, P% of the <precision> conv peak' for a measured img/s, with
    the step's FLOPs counted once and the peak measured in this run; elsewhere it gives ''."""
    if device.type != "cpu":
        return lambda rate, precision: ""
    per_image = step_flops(create(model_name, num_classes=10), x, y) / len(x)
    peak = peak_gflops(device)
    print("peak GFLOP/s on this CPU: " + ", ".join(f"{key} {value:.0f}" for key, value in peak.items()))

    def describe(rate: float, precision: str) -> str:
        gflops = rate * per_image / 1e9
        return f"   {gflops:6.0f} GFLOP/s, {gflops / peak[f'{precision}_conv']:.0%} of the {precision} conv peak"

    return describe


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--model", default="bit_r50x1")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true", help="also time cifarlab's step under torch.compile")
    ap.add_argument("--compile-mode", default=None, help="torch.compile mode, e.g. reduce-overhead (CUDA graphs), max-autotune")
    ap.add_argument("--standardisation", action="store_true",
                    help="only compare the two weight-standardisation formulations (before/after) in fp32")
    args = ap.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True
    x = torch.randn(args.batch_size, 3, 128, 128, device=device)
    y = torch.randint(0, 10, (args.batch_size,), device=device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(f"{args.model} training step, 128x128, batch {args.batch_size}, {name}, torch {torch.__version__}, "
          f"median of {args.repeats} x {args.steps} steps")
    if args.standardisation:
        standardisation_ratio(args.model, x, y, device, args.steps, args.repeats)
        return
    ref = images_per_second(create(args.model, num_classes=10).to(device), x, y, device, "fp32", args.steps, args.repeats)
    share = share_of_peak(args.model, x, y, device)
    print(f"reference  {'fp32, channels-first':30s} {ref:9.1f} img/s{share(ref, 'fp32')}")
    variants = [("bf16, channels-first", False, False), ("bf16, channels_last", True, False)]
    if args.compile:
        variants += [("bf16, channels-first, compile", False, True), ("bf16, channels_last, compile", True, True)]
    for label, channels_last, compiled in variants:
        layout = torch.channels_last if channels_last else torch.contiguous_format
        model = create(args.model, num_classes=10).to(device, memory_format=layout)
        if compiled:
            model = torch.compile(model, mode=args.compile_mode)
        ours = images_per_second(model, x.contiguous(memory_format=layout), y, device, "bf16", args.steps, args.repeats)
        print(f"cifarlab   {label:30s} {ours:9.1f} img/s   ratio {ours / ref:5.2f}x{share(ours, 'bf16')}")


if __name__ == "__main__":
    main()
