"""Training throughput of every zoo model on this machine: images/s at batch 128, fp32 and bf16.

The table a user reads before choosing a model. Each model trains with SGD on random 32x32 inputs
(the data path is not measured here: see bench/pipeline.py) for --steps steps after --warmup steps;
the FLOPs of one step (forward and backward, `torch.utils.flop_counter`) divided by its time give
the achieved GFLOP/s, printed as a share of this machine's peak measured in the same run
(bench/cpu_peak.py). Freed memory stays in the process, as in a run (`train.allocator: auto`;
`--allocator system` for the C library's defaults).

    python bench/zoo_speed.py                          # every model, fp32 and bf16
    python bench/zoo_speed.py --models resnet18 vgg11_bn --steps 5
"""

from __future__ import annotations

import argparse
import itertools

import torch
from cpu_peak import median_seconds, peak_gflops, step_flops

from cifarlab.models import create, names
from cifarlab.training.allocator import apply_allocator_setting
from cifarlab.training.losses import get_loss
from cifarlab.training.step import Optimisation, training_step


def images_per_second(name: str, precision: str, batch: int, steps: int, warmup: int) -> tuple[float, float]:
    """(images/s, GFLOP/s) of training `name` on the CPU."""
    torch.manual_seed(0)
    model = create(name, num_classes=10).to(memory_format=torch.channels_last)
    inputs = torch.randn(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (batch,))
    flops = step_flops(model, inputs, labels)
    opt = Optimisation(model=model, optimizer=torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9),
                       loss=get_loss("cross_entropy"), device=torch.device("cpu"), precision=precision)
    step = itertools.count()
    seconds = median_seconds(lambda: float(training_step(opt, inputs, labels, labels, 0.01, next(step)).loss),
                             steps, torch.device("cpu"), warmup)  # float(): the step is done when timed
    return batch / seconds, flops / seconds / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=None, help="default: every zoo model")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--allocator", choices=["auto", "system"], default="auto",
                        help="train.allocator, as a run applies it (process-wide)")
    args = parser.parse_args()
    apply_allocator_setting(args.allocator)
    peak = peak_gflops(torch.device("cpu"))
    print(f"peak GFLOP/s on this CPU ({torch.get_num_threads()} threads): "
          + ", ".join(f"{key} {value:.0f}" for key, value in peak.items()))
    print("| model | " + " | ".join(f"{p} img/s | {p} % of peak" for p in args.precisions) + " |")
    print("|---|" + "---|---|" * len(args.precisions))
    for name in args.models or [n for n in names() if not n.startswith("bit_")]:
        cells = []
        for precision in args.precisions:
            rate, gflops = images_per_second(name, precision, args.batch_size, args.steps, args.warmup)
            cells += [f"{rate:,.0f}", f"{100 * gflops / peak[f'{precision}_conv']:.0f}%"]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
