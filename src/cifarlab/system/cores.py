"""Sharing the cores: how many this process may use, how busy the others keep them, and a warning
when a new training would compete for them (two trainings that each take every core run many times
slower than one after the other)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Optional, TextIO

import torch

from cifarlab.system.trainings import other_trainings


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
