"""What a run needs of the machine, checked before it starts: memory for its batch, cores to itself.

`check_fits` refuses a batch larger than the training set or one whose training step cannot fit
in the device's free memory, and says what fits. `training_slot` marks a training as running on
this machine; `warn_if_oversubscribed` warns when other trainings or other work already use the
cores, because two trainings that each take every core run many times slower than one after the other.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Optional, TextIO

import torch
from torch import nn

from cifarlab.errors import CifarlabError

# The activations a step keeps for backward, their gradients and the workspace of the backward
# pass together are about three times the forward outputs; weights count four times (weights,
# gradients, two optimiser moments).
BACKWARD_FACTOR = 3
WEIGHT_COPIES = 4
USABLE_SHARE = 0.9  # leave room for the allocator, the data pipeline and everything else


# ---------------------------------------------------------------- memory


def check_fits(recipe, num_train_images: int, model: nn.Module, input_size: Sequence[int] | int,
               extra_bytes: int = 0) -> None:
    """Refuse a batch larger than the training set, or one whose training step exceeds free memory.

    `input_size` is (channels, height, width) or one side of a square RGB image, as the model sees it
    after resizing and cropping; `extra_bytes` is whatever else lives on the device (the dataset).
    """
    batch = recipe.train.batch_size
    # A k-shot set smaller than the batch is drawn with replacement (BiT: batch 512 on 10 images).
    if batch > num_train_images and not recipe.data.examples_per_class:
        fits = _round_down(num_train_images, recipe.train.accumulate)
        raise CifarlabError(
            f"train.batch_size={batch} is larger than the {num_train_images} training images; "
            f"use train.batch_size={fits} (at most {num_train_images})"
        )
    check_progressive_size(recipe, model, input_size)
    device = training_device(recipe.train.device)
    available = available_bytes(device)
    if available is None:
        return
    try:
        per_image = activation_bytes_per_image(model, input_size)
    except RuntimeError as exc:  # torch's shape errors: the images are too small (or shaped wrong) for the network
        reason = str(exc).splitlines()[0]
        if isinstance(input_size, int):
            shown = f"{input_size}x{input_size}"
        else:
            shown = f"{input_size[0]}-channel {input_size[-2]}x{input_size[-1]}"
        # torch names a channel mismatch "expected input ... to have 3 channels": resizing cannot fix that.
        fix = ("give images with the channels the model takes (e.g. a grey image repeated to 3 channels) or a "
               "model built for them" if "channels" in reason else
               "raise augment.resize / augment.crop or choose a model built for that size")
        raise CifarlabError(f"model {recipe.model.name} cannot take {shown} images ({reason[:160]}); {fix}") from exc
    micro_batch = batch // recipe.train.accumulate
    fixed = WEIGHT_COPIES * sum(p.numel() * p.element_size() for p in model.parameters()) + extra_bytes
    need = fixed + BACKWARD_FACTOR * per_image * micro_batch
    budget = USABLE_SHARE * available
    if need <= budget:
        return
    fitting_micro = int((budget - fixed) // (BACKWARD_FACTOR * per_image)) if budget > fixed else 0
    if fitting_micro < 1:
        raise CifarlabError(
            f"the model alone needs about {_gib(fixed)} on {device} but only {_gib(available)} is free; "
            "use a smaller model, free memory, or train on a device with more memory"
        )
    fits = _round_down(fitting_micro * recipe.train.accumulate, recipe.train.accumulate)
    accumulate = math.ceil(batch / fitting_micro)
    while batch % accumulate:  # micro-batches must be equal
        accumulate += 1
    raise CifarlabError(
        f"train.batch_size={batch} needs about {_gib(need)} on {device} for one training step but only "
        f"{_gib(available)} is free; use train.batch_size={fits} or less, or keep the batch and split it "
        f"with train.accumulate={accumulate}"
    )


def check_progressive_size(recipe, model: nn.Module, input_size: Sequence[int] | int) -> None:
    """Progressive resizing's early batches must be smaller than the training images and fit the network."""
    progressive = recipe.augment.progressive_size
    if progressive is None:
        return
    channels = 3 if isinstance(input_size, int) else input_size[0]
    full = input_size if isinstance(input_size, int) else input_size[-1]
    if progressive >= full:
        raise CifarlabError(
            f"augment.progressive_size={progressive} is not smaller than the {full}x{full} training images; "
            f"use a smaller side, e.g. augment.progressive_size={max(8, full * 3 // 4)}")
    try:
        activation_bytes_per_image(model, (channels, progressive, progressive))
    except RuntimeError as exc:  # torch's shape errors: a head sized for the full images
        raise CifarlabError(
            f"model {recipe.model.name} cannot take the {progressive}x{progressive} images of progressive resizing "
            f"({str(exc).splitlines()[0][:160]}); raise augment.progressive_size or turn it off "
            "(augment.progressive_size=null augment.progressive_epochs=0)") from exc


def activation_bytes_per_image(model: nn.Module, input_size: Sequence[int] | int) -> int:
    """Bytes of every layer's output for one image, counted in a forward pass of two images.

    The pass runs without gradients in eval mode, so the model is left exactly as it was (no
    running-statistics update); the layers' outputs have the same sizes as in training.
    """
    shape = (3, input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    total = [0]

    def count(module, inputs, output) -> None:
        for tensor in _tensors(output):
            total[0] += tensor.numel() * tensor.element_size()

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(count) for m in leaves]
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((2, *shape), device=device))
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return max(1, total[0] // 2)


def _tensors(output) -> Iterator[torch.Tensor]:
    if isinstance(output, torch.Tensor):
        yield output
    elif isinstance(output, (list, tuple)):
        for item in output:
            yield from _tensors(item)
    elif isinstance(output, dict):
        for item in output.values():
            yield from _tensors(item)


def training_device(name: str) -> torch.device:
    """The device `train.device` means here (`auto`: the GPU if there is one)."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def available_bytes(device: torch.device) -> Optional[int]:
    """Free memory of `device` in bytes; None when it cannot be told (then nothing is refused)."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type == "cpu":
        return _meminfo_available()
    return None


def _meminfo_available() -> Optional[int]:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        import psutil  # optional: other systems than Linux

        return int(psutil.virtual_memory().available)
    except ImportError:
        return None


def _round_down(n: int, multiple: int) -> int:
    """The largest power of two <= n that is a multiple of `multiple` (else the largest multiple)."""
    power = 1 << (max(n, 1).bit_length() - 1)
    if power % multiple == 0 and power >= multiple:
        return power
    return max(multiple, n // multiple * multiple)


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


# ---------------------------------------------------------------- sharing the cores


def usable_cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _busy_ticks() -> tuple[int, int]:
    """(clock ticks the machine's CPUs spent working, ticks this process spent), from /proc."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    own = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
    return user + nice + system + irq + softirq + steal, int(own[11]) + int(own[12])  # utime + stime


def machine_load(window_s: float = 0.1) -> Optional[float]:
    """Cores kept busy by other processes right now, sampled over `window_s`; None where /proc is missing.

    Not the load average: that lags by a minute, so a training started right after another
    finished would be warned about cores that are already free.
    """
    try:
        machine_before, own_before = _busy_ticks()
        start = time.monotonic()
        time.sleep(window_s)
        machine_after, own_after = _busy_ticks()
        elapsed = time.monotonic() - start
    except (OSError, ValueError, IndexError):
        return None
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    return max(0.0, (machine_after - machine_before) - (own_after - own_before)) / (ticks_per_s * elapsed)


def free_cores() -> int:
    """Cores not taken by other cifarlab trainings on this machine (at least one): a new training's
    default thread count. Not the load average: that counts this process's own recent work too,
    and would halve a training started right after another finished."""
    return max(1, usable_cores() - sum(other_trainings().values()))


def _registry() -> Path:
    return Path(tempfile.gettempdir()) / f"cifarlab-trainings-{os.getuid() if hasattr(os, 'getuid') else 'user'}"


@contextlib.contextmanager
def training_slot() -> Iterator[None]:
    """Mark a training as running on this machine while the block runs (one pid file per training)."""
    folder = _registry()
    marker = folder / str(os.getpid())
    try:
        folder.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(torch.get_num_threads()))
    except OSError:
        marker = None  # a read-only temp folder only costs the warning, never the run
    try:
        yield
    finally:
        if marker is not None:
            with contextlib.suppress(OSError):
                marker.unlink()


def other_trainings() -> dict[int, int]:
    """Other live cifarlab trainings on this machine: pid -> its threads. Markers of dead ones are removed."""
    found = {}
    try:
        markers = list(_registry().iterdir())
    except OSError:
        return found
    for marker in markers:
        if not marker.name.isdigit() or int(marker.name) == os.getpid():
            continue
        pid = int(marker.name)
        if _alive(pid):
            with contextlib.suppress(OSError, ValueError):
                found[pid] = int(marker.read_text() or 1)
        else:
            with contextlib.suppress(OSError):
                marker.unlink()
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def warn_if_oversubscribed(threads: Optional[int] = None, stream: Optional[TextIO] = None) -> Optional[str]:
    """Print (and return) one warning line when this training's threads would compete for busy cores."""
    threads = threads or torch.get_num_threads()
    cores = usable_cores()
    others = other_trainings()
    crowded = bool(others) and threads + sum(others.values()) > cores
    # Sampled only when no other cifarlab training explains the cores' use: it takes 0.1 s.
    load = None if crowded else machine_load()
    if crowded:
        running = len(others) + 1
        busy = (f"{len(others)} other cifarlab training{'s' if len(others) > 1 else ''} "
                f"(pid {', '.join(map(str, sorted(others)))}) already run{'s' if len(others) == 1 else ''} here")
    elif load is not None and round(load) >= 1 and threads + round(load) > cores:
        running = 2
        busy = f"other processes already keep {load:.1f} of the machine's {cores} core{'s' if cores > 1 else ''} busy"
    else:
        return None
    share = max(1, cores // running)
    message = (f"warning: {busy}; trainings that share cores each slow down many times: run one at a time, "
               f"or give each {share} thread{'s' if share > 1 else ''} (OMP_NUM_THREADS={share})")
    print(message, file=stream or sys.stderr, flush=True)
    return message
