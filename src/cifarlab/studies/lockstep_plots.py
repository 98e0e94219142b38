"""The figure of a lockstep study: every variant's curves overlaid, training above, test (display only) or
validation below (the FDU seed's layout)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cifarlab.evaluation.curve_panels import curve_panels
from cifarlab.figures import save_figure


def _series(histories: list[list[dict]], key: str, percent: bool) -> tuple[np.ndarray, np.ndarray]:
    """Epochs every seed reached, and the metric per seed at those epochs (seeds x epochs)."""
    per_seed = [{r["epoch"]: r[key] for r in history if r.get(key) is not None and r.get("epoch") is not None}
                for history in histories]
    epochs = sorted(set.intersection(*(set(values) for values in per_seed))) if per_seed else []
    values = np.array([[seed[e] for e in epochs] for seed in per_seed], dtype=float).reshape(len(per_seed), len(epochs))
    return np.array(epochs, dtype=float), values * (100 if percent else 1)


def plot_lockstep_curves(curves: dict[str, list[list[dict]]], path: str | Path, title: str = "") -> Path:
    """One line per variant (mean over seeds, the min-max band over seeds shaded) in a 2 x 2 grid by epoch.

    `curves` maps a variant to the epoch records (metrics.jsonl, kind "epoch") of each of its seeds.
    """
    fig = Figure(figsize=(11, 8), layout="constrained")
    axes = fig.subplots(2, 2)
    panels = curve_panels(record for histories in curves.values() for history in histories for record in history)
    for row_panels, row_axes in zip(panels, axes):
        for (key, panel_title, percent), ax in zip(row_panels, row_axes):
            for variant, histories in curves.items():
                epochs, values = _series(histories, key, percent)
                if not len(epochs):
                    continue
                (line,) = ax.plot(epochs, values.mean(0), label=variant, marker="." if len(epochs) < 30 else None)
                if len(values) > 1:
                    ax.fill_between(epochs, values.min(0), values.max(0), color=line.get_color(), alpha=0.2)
            ax.set(title=panel_title, xlabel="epoch")
            ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(5, len(labels)), fontsize=9)
    return save_figure(fig, path)
