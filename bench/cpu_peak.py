"""This machine's attainable throughput: matrix multiply and convolution GFLOP/s in fp32 and bf16.

The training benchmarks divide their achieved FLOP/s by these figures (`peak_gflops`), measured in
the same run, to say how close a recipe gets to what the hardware allows.

    python bench/cpu_peak.py                 # CPU: 2048^3 matmul, a ResNet-sized 3x3 conv
    python bench/cpu_peak.py --device cuda
"""

from __future__ import annotations

import argparse
import platform

import torch
import torch.nn.functional as F
from common import median_seconds


def matmul_gflops(dtype: torch.dtype, device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    return 2 * size**3 / median_seconds(lambda: a @ b, repeats, device) / 1e9


def conv_gflops(dtype: torch.dtype, device: torch.device, batch: int = 64, channels: int = 128, side: int = 32,
                repeats: int = 5) -> float:
    """A 3x3 same-padded convolution, channels_last (the layout training uses), forward only."""
    x = torch.randn(batch, channels, side, side, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    w = torch.randn(channels, channels, 3, 3, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)
    flops = 2 * batch * channels * channels * 9 * side * side
    return flops / median_seconds(lambda: F.conv2d(x, w, padding=1), repeats, device) / 1e9


def step_flops(model: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> int:
    """FLOPs of one training step's forward and backward pass (`torch.utils.flop_counter`); gradients are cleared."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        F.cross_entropy(model(inputs), labels).backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def peak_gflops(device: torch.device, repeats: int = 5) -> dict[str, float]:
    """{"fp32_matmul", "bf16_matmul", "fp32_conv", "bf16_conv"} in GFLOP/s on `device`."""
    result = {}
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        result[f"{name}_matmul"] = matmul_gflops(dtype, device, repeats=repeats)
        result[f"{name}_conv"] = conv_gflops(dtype, device, repeats=repeats)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    device = torch.device(args.device)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    for key, value in peak_gflops(device, args.repeats).items():
        print(f"{key:12s} {value:8.0f} GFLOP/s")


if __name__ == "__main__":
    main()
