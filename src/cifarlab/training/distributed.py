"""Device choice and DistributedDataParallel set-up when started by torchrun."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from cifarlab.errors import CifarlabError


@dataclass(frozen=True)
class Placement:
    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CifarlabError(f"train.device={name} but no CUDA GPU is visible; use train.device=cpu or auto")
    return device


def setup(device_name: str) -> Placement:
    """One process: the chosen device. Under torchrun (WORLD_SIZE > 1): join the process group.

    CUDA ranks use NCCL and their LOCAL_RANK's GPU; CPU ranks use gloo.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Placement(pick_device(device_name))
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(device_name)
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Placement(device, rank, world)


def barrier(placement: Placement) -> None:
    if placement.world_size > 1:
        dist.barrier()


def teardown(placement: Placement) -> None:
    if placement.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()
