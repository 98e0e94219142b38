"""validation_split and examples_per_class: seeded, stratified, deterministic, seed-sensitive."""

from __future__ import annotations

import pytest
import torch

from cifarlab.data import examples_per_class, validation_split
from cifarlab.errors import CifarlabError


def shuffled_labels(counts: list[int], seed: int = 0) -> torch.Tensor:
    """Labels with `counts[c]` examples of class c, in a random order."""
    labels = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    return labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]


def test_validation_split_takes_each_class_in_proportion():
    labels = shuffled_labels([100, 50, 30, 20])
    train, val = validation_split(labels, 40, seed=0)
    assert torch.bincount(labels[val], minlength=4).tolist() == [20, 10, 6, 4]
    assert len(train) + len(val) == len(labels)


def test_validation_split_rounds_to_the_exact_size_asked():
    labels = shuffled_labels([7, 7, 7])
    for size in range(0, 22):
        _, val = validation_split(labels, size, seed=1)
        per_class = torch.bincount(labels[val], minlength=3)
        assert len(val) == size and int(per_class.max() - per_class.min()) <= 1


def test_validation_split_partitions_the_indices():
    labels = shuffled_labels([30, 30, 30])
    train, val = validation_split(labels, 12, seed=3)
    assert torch.equal(torch.sort(torch.cat([train, val])).values, torch.arange(90))
    assert train.dtype == val.dtype == torch.int64


def test_validation_split_of_size_zero_keeps_everything_for_training():
    labels = shuffled_labels([5, 5])
    train, val = validation_split(labels, 0, seed=0)
    assert len(val) == 0 and torch.equal(train, torch.arange(10))


def test_validation_split_is_repeatable_and_the_seed_changes_it():
    labels = shuffled_labels([500] * 10)
    first = validation_split(labels, 1000, seed=7)[1]
    assert torch.equal(first, validation_split(labels, 1000, seed=7)[1])
    assert not torch.equal(first, validation_split(labels, 1000, seed=8)[1])


def test_splits_do_not_depend_on_thread_count_or_global_rng():
    labels = shuffled_labels([5000] * 10)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        torch.manual_seed(123)
        one = validation_split(labels, 5000, seed=5)[1], examples_per_class(labels, 10, seed=5)
        torch.set_num_threads(max(2, threads))
        torch.manual_seed(456)
        many = validation_split(labels, 5000, seed=5)[1], examples_per_class(labels, 10, seed=5)
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one[0], many[0]) and torch.equal(one[1], many[1])


def test_validation_split_rejects_sizes_beyond_the_data():
    with pytest.raises(CifarlabError, match="validation size 11 must be a whole number from 0 to 10"):
        validation_split(shuffled_labels([5, 5]), 11, seed=0)
    with pytest.raises(CifarlabError, match="validation size"):
        validation_split(shuffled_labels([5, 5]), 2.5, seed=0)


def test_examples_per_class_takes_k_distinct_indices_of_every_class():
    labels = shuffled_labels([40, 25, 60])
    picked = examples_per_class(labels, 5, seed=0)
    assert picked.dtype == torch.int64 and len(torch.unique(picked)) == 15
    assert torch.bincount(labels[picked]).tolist() == [5, 5, 5]


def test_examples_per_class_seed_really_takes_effect():
    labels = shuffled_labels([5000] * 10)
    subsets = {tuple(examples_per_class(labels, 1, seed=s).tolist()) for s in range(5)}
    assert len(subsets) == 5  # five seeds, five different 1-shot sets
    again = examples_per_class(labels, 1, seed=3)
    assert torch.equal(again, examples_per_class(labels, 1, seed=3))


def test_examples_per_class_grows_by_adding_to_the_smaller_sets():
    labels = shuffled_labels([50] * 4)
    one, five = examples_per_class(labels, 1, seed=2), examples_per_class(labels, 5, seed=2)
    assert set(one.tolist()) <= set(five.tolist())


def test_examples_per_class_ignores_label_values_nobody_uses():
    labels = torch.tensor([0, 0, 2, 2, 2])  # class 1 has no examples at all
    assert torch.bincount(labels[examples_per_class(labels, 2, seed=0)]).tolist() == [2, 0, 2]


def test_more_shots_than_the_smallest_class_says_how_many_it_has():
    labels = shuffled_labels([10, 3, 8])
    with pytest.raises(CifarlabError, match="4 examples per class asked, but class 1 has only 3"):
        examples_per_class(labels, 4, seed=0)
    assert len(examples_per_class(labels, 3, seed=0)) == 9
