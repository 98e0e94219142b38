"""Keep freed activation memory inside the process on Linux (glibc), so a CPU training step does not
page-fault its way through fresh memory every step.

glibc's malloc serves a request above its mmap threshold (128 KiB at start, raised adaptively to at
most 32 MiB) with a fresh `mmap` and gives it back with `munmap` on free, and it trims the top of
the heap once more than 128 KiB there is free. A CPU training step allocates and frees its
activations and gradients, tens to hundreds of MiB, every step: with these defaults each step maps
them anew, and the kernel zero-fills every page on first touch. Measured on the 2-core CPU
(2026-12-03, `python bench/allocator.py`): fast94's batch-512 step runs 1.23x faster with the limits
below (0.27 million minor page faults per process of 7 steps instead of 0.92 million), BiT's
batch-512 transfer step 1.54x, and a whole fast94_progressive run takes 0.93x the training time
(`--train`). Intel's PyTorch CPU tuning guide preloads jemalloc or tcmalloc for the same reason;
`mallopt` needs no extra library and no restart.

Evaluation frees its activations batch after batch in the same way (no gradients, but evaluation
batches of 500-1000 images and several TTA views): `cifarlab eval`, `predict`, `robustness eval`,
`landscape`, `prune` and the API's `evaluate` apply the run's setting too, measured with
`python bench/eval_speed.py`.

The cost: memory a run frees stays in the process while it trains (its resident size stays near its
peak), so `allocator_setting` hands the free heap back with `malloc_trim` when the work ends: a
notebook or a few-shot sweep that trains run after run in one process does not hold the largest
run's memory, and the next run's memory check (`cifarlab.training.memory_fit`) sees it free. The settings are
process-wide and cannot be switched back to glibc's adaptive defaults once set.
"""

from __future__ import annotations

import contextlib
import ctypes
import platform
import sys
from collections.abc import Iterator

# mallopt parameter numbers, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Requests up to 1 GiB come from the heap, where a freed block is reused without a system call;
# larger ones (a whole cached dataset) are still mapped on their own. Free memory at the top of the
# heap is given back only past 2 GiB.
MMAP_THRESHOLD_BYTES = 1 << 30
TRIM_THRESHOLD_BYTES = 2**31 - 1

_applied = False


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL("libc.so.6")  # dlopen of a loaded library: a handle, no second copy


def glibc_available() -> bool:
    """True on Linux with glibc, the only C library whose malloc this module tunes."""
    return sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"


def retain_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; True when they are set now or
    were set before, False where there is no glibc (macOS, Windows, musl) and nothing changed."""
    global _applied
    if _applied:
        return True
    if not glibc_available():
        return False
    libc = _libc()
    # mallopt returns 1 on success; a glibc that refuses a value keeps its defaults, which is
    # only slower, so the run goes on.
    mmap_set = libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
    trim_set = libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES) == 1
    _applied = mmap_set and trim_set
    return _applied


def apply_allocator_setting(mode: str) -> bool:
    """Apply a recipe's `train.allocator`: `auto` retains freed memory where glibc allows it,
    `system` leaves the C library's defaults. True when the retaining settings are in force."""
    if mode == "auto":
        return retain_freed_memory()
    if mode == "system":
        return _applied  # a process that set them earlier keeps them: glibc cannot undo it
    raise ValueError(f"unknown allocator setting {mode!r}: expected auto or system")


def release_freed_memory() -> bool:
    """Give the free parts of the heap back to the system (glibc's `malloc_trim`), as the default
    settings would have; True when memory was released. Cheap: the kernel drops the pages."""
    if not _applied:
        return False  # glibc's defaults already return memory as it is freed
    return _libc().malloc_trim(0) == 1


@contextlib.contextmanager
def allocator_setting(mode: str) -> Iterator[bool]:
    """Train or evaluate inside with `mode` (a recipe's `train.allocator`) in force, then give the free
    heap back. Yields True when freed memory is being retained. Nesting is harmless: an inner block's
    exit only trims what is free at that moment."""
    applied = apply_allocator_setting(mode)
    try:
        yield applied
    finally:
        release_freed_memory()  # the next run or evaluation in this process starts from a trimmed heap
