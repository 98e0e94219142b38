"""Seeded, stratified index splits: a validation hold-out and k examples per class.

Randomness comes from a CPU `torch.Generator` seeded per call, drawn class by class in
label order, so the indices depend only on (labels, size or k, seed): not on thread
count, device or what ran before.
"""

from __future__ import annotations

import operator

import torch

from cifarlab.errors import CifarlabError


def validation_split(labels: torch.Tensor, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Hold out `size` examples, each class in proportion to its share; (train_idx, val_idx), sorted."""
    labels = _as_labels(labels)
    n = len(labels)
    whole = _whole(size)
    if whole is None or not 0 <= whole <= n:
        raise CifarlabError(f"validation size {size!r} must be a whole number from 0 to {n} "
                            "(the training set's size); set the validation size in that range")
    size = whole
    counts = torch.bincount(labels)
    quotas = _proportional(counts, size)
    generator = torch.Generator().manual_seed(seed)
    held_out = []
    for cls, members in enumerate(_members_by_class(labels, len(counts))):
        order = torch.randperm(len(members), generator=generator)
        held_out.append(members[order[: quotas[cls]]])
    val_mask = torch.zeros(n, dtype=torch.bool)
    val_mask[torch.cat(held_out)] = True
    return torch.nonzero(~val_mask).flatten(), torch.nonzero(val_mask).flatten()


def examples_per_class(labels: torch.Tensor, k: int, seed: int) -> torch.Tensor:
    """Pick `k` indices of each class without replacement, seeded; sorted LongTensor.

    For one seed the picks are nested: the 5-shot set contains the 1-shot set.
    """
    labels = _as_labels(labels)
    counts = torch.bincount(labels)
    present = counts[counts > 0]
    whole = _whole(k)
    if whole is None or whole < 1:
        raise CifarlabError(f"examples per class must be a whole number of at least 1, got {k!r}")
    k = whole
    if k > int(present.min()):
        smallest = int(torch.nonzero(counts == present.min()).flatten()[0])
        raise CifarlabError(
            f"{k} examples per class asked, but class {smallest} has only {int(present.min())}; "
            f"ask for at most {int(present.min())} or use more training data"
        )
    generator = torch.Generator().manual_seed(seed)
    picked = []
    for members in _members_by_class(labels, len(counts)):
        if len(members):
            picked.append(members[torch.randperm(len(members), generator=generator)[:k]])
    return torch.sort(torch.cat(picked)).values


def _whole(value) -> int | None:
    """`value` as an int when it is a whole number (int, numpy or 0-d tensor integer), else None."""
    if isinstance(value, bool):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def _as_labels(labels) -> torch.Tensor:
    labels = torch.as_tensor(labels).to("cpu", torch.int64).flatten()
    if len(labels) == 0:
        raise CifarlabError("no labels given: the training set is empty; check the dataset")
    if int(labels.min()) < 0:
        raise CifarlabError("labels must be non-negative class indices; check the dataset")
    return labels


def _members_by_class(labels: torch.Tensor, num_classes: int) -> list[torch.Tensor]:
    """Indices of each class, ascending, for classes 0..num_classes-1."""
    order = torch.argsort(labels, stable=True)
    return list(torch.split(order, torch.bincount(labels, minlength=num_classes).tolist()))


def _proportional(counts: torch.Tensor, size: int) -> list[int]:
    """Split `size` over classes in proportion to `counts` (largest remainder; ties to lower labels)."""
    total = int(counts.sum())
    exact = [int(c) * size for c in counts]  # in units of 1/total, kept integral
    quotas = [e // total for e in exact]
    by_remainder = sorted(range(len(counts)), key=lambda c: (-(exact[c] % total), c))
    for cls in by_remainder[: size - sum(quotas)]:
        quotas[cls] += 1
    return quotas
