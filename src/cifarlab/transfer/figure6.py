"""The BiT paper's Figure 6 values and a plot of a few-shot sweep beside them."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from cifarlab.figures import save_figure

# CIFAR-10 test accuracy (%), median of 5 random subsets, read off Figure 6 of Kolesnikov et al.,
# "Big Transfer (BiT)", ECCV 2020 (so about +-1). Keys: (upstream, shots) -> {architecture: value}.
FIGURE6 = {
    ("BiT-S", 1): {"R50x1": 44.5, "R101x1": 48.8, "R50x3": 46.3, "R101x3": 47.5, "R152x4": 42.0},
    ("BiT-S", 5): {"R50x1": 72.9, "R101x1": 74.5, "R50x3": 75.0, "R101x3": 75.6, "R152x4": 75.4},
    ("BiT-M", 1): {"R50x1": 52.5, "R101x1": 52.7, "R50x3": 52.0, "R101x3": 54.0, "R152x4": 50.8},
    ("BiT-M", 5): {"R50x1": 83.0, "R101x1": 86.6, "R50x3": 85.5, "R101x3": 83.7, "R152x4": 86.5},
}


# The datasets FIGURE6 holds values for: only CIFAR-10 was read off the figure.
PAPER_DATASETS = ("cifar10",)


def dataset_title(dataset: str) -> str:
    """How a plot names a dataset: CIFAR-10, CIFAR-100, or an image folder's own name."""
    titles = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100"}
    if dataset in titles:
        return titles[dataset]
    return Path(dataset.split(":", 1)[-1]).name or dataset


def paper_value(weights: str, shots: int, dataset: str = "cifar10") -> Optional[float]:
    """Figure 6's value for an official checkpoint name (`BiT-M-R50x1`) on `dataset`, else None."""
    parts = weights.split("-")
    if dataset not in PAPER_DATASETS or len(parts) != 3 or parts[0] != "BiT":
        return None
    return FIGURE6.get((f"BiT-{parts[1]}", int(shots)), {}).get(parts[2])


def plot_figure6(summary: list[dict], rows: list[dict], path: Path, dataset: str = "cifar10") -> None:
    """Write figure6.png: the sweep of `dataset` beside the paper's values for that dataset."""
    fig = figure6(summary, rows, dataset)
    save_figure(fig, path, dpi=100)


def _centres(summary: list[dict], labels: list[str], shots: int, key: str) -> list[tuple[int, float]]:
    """(x, value) of `key` ("mean" or "median") for each weights label that has runs at `shots`."""
    found = {s["weights"]: s[key] for s in summary if s["shots"] == shots}
    return [(x, found[w]) for x, w in enumerate(labels) if w in found]


def figure6(summary: list[dict], rows: list[dict], dataset: str = "cifar10"):
    """One panel per shot count: single runs as dots, means joined by a line, medians as bars across
    each column (seeds/001 plots means; medians show when one subset pulls the mean away), paper
    values (if any) as stars."""
    from matplotlib.figure import Figure

    shots = sorted({int(r["shots"]) for r in summary})
    labels = list(dict.fromkeys(r["weights"] for r in summary))
    fig = Figure(figsize=(4 * len(shots), 4), layout="constrained")
    axes = fig.subplots(1, len(shots), squeeze=False)[0]
    for ax, k in zip(axes, shots):
        xs = range(len(labels))
        runs = [[float(r["top1"]) for r in rows if r["weights"] == w and int(r["shots"]) == k] for w in labels]
        for x, values in zip(xs, runs):
            ax.scatter([x] * len(values), values, color="tab:blue", alpha=0.5, s=18)
        means, medians = _centres(summary, labels, k, "mean"), _centres(summary, labels, k, "median")
        if means:
            ax.plot(*zip(*means), "-o", color="tab:blue", label="cifarlab mean")
        if medians:
            ax.scatter(*zip(*medians), marker="_", s=300, linewidths=2, color="black", label="cifarlab median", zorder=3)
        paper = [(x, paper_value(w, k, dataset)) for x, w in zip(xs, labels) if paper_value(w, k, dataset) is not None]
        if paper:
            ax.scatter(*zip(*paper), marker="*", s=120, color="tab:red", label="BiT paper (Fig. 6)", zorder=3)
        ax.set_xticks(list(xs), labels, rotation=30, ha="right")
        ax.set(title=f"{dataset_title(dataset)}, {k}-shot", ylabel="test accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig
