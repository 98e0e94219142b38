"""The pruning figure: test accuracy against the pruning ratio, one line per method, before and after fine-tuning."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from cifarlab.figures import save_figure

COLOURS = {"slbi": "tab:red", "magnitude": "tab:blue"}
LABELS = {"slbi": "DessiLBI (Gamma)", "magnitude": "weight magnitude"}


def plot_pruning(rows: Sequence, dense_top1: float, path: str | os.PathLike, title: str = "") -> Path:
    """Left panel: top-1 right after pruning; right panel (when fine-tuned): top-1 after fine-tuning.

    `rows` carry method, ratio, top1 and top1_finetuned (see PruneRow); the dense model's accuracy is the
    dotted line, so the cost of each ratio reads off directly.
    """
    tuned = any(r.top1_finetuned is not None for r in rows)
    fig = Figure(figsize=(10.0 if tuned else 5.5, 4.0), layout="constrained")
    axes = fig.subplots(1, 2 if tuned else 1, sharey=True, squeeze=False)[0]
    panels = [("pruned", "top1")] + ([("pruned and fine-tuned", "top1_finetuned")] if tuned else [])
    methods = list(dict.fromkeys(r.method for r in rows))
    for ax, (panel, key) in zip(axes, panels):
        for method in methods:
            points = sorted((r.ratio, getattr(r, key)) for r in rows if r.method == method)
            ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color=COLOURS.get(method),
                    label=LABELS.get(method, method))
        ax.axhline(dense_top1, color="grey", linestyle=":", label=f"dense ({dense_top1:.1f}%)")
        ax.set_xlabel("pruning ratio (% of each pruned layer's filters or weights)")
        ax.set_title(panel, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("test top-1 (%)")
    if title:
        fig.suptitle(title, fontsize=10)
    return save_figure(fig, path)
