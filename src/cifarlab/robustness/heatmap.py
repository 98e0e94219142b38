"""The robustness heatmap: accuracy per corruption (rows) and severity (columns), plus each row's mean."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cifarlab.figures import save_figure


def plot_robustness(result: dict, path: str | os.PathLike) -> Path:
    """Draw the accuracy table of a robustness result (robustness.json's content) as a PNG."""
    names = list(result["accuracy"])
    severities = [str(s) for s in result["severities"]]
    table = np.array([[result["accuracy"][name][s] for s in severities] + [result["mean_accuracy"][name]]
                      for name in names])
    fig = Figure(figsize=(7.0, 1.2 + 0.38 * len(names)), layout="constrained")
    ax = fig.subplots()
    image = ax.imshow(table * 100, cmap="viridis", vmin=0, vmax=100, aspect="auto", interpolation="nearest")
    ax.set_xticks(range(len(severities) + 1), labels=severities + ["mean"])
    ax.set_yticks(range(len(names)), labels=names)
    ax.set_xlabel("severity")
    for row in range(table.shape[0]):
        for column in range(table.shape[1]):
            value = table[row, column] * 100
            ax.text(column, row, f"{value:.1f}", ha="center", va="center", fontsize=7,
                    color="black" if value > 60 else "white")
    clean = result["clean"]["top1"] * 100
    ax.set_title(f"top-1 accuracy (%) under corruption; clean {clean:.1f}%, "
                 f"mean corrupted {result['mean_corrupted_accuracy'] * 100:.1f}%", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return save_figure(fig, path)
