"""Plots that put runs side by side: overlaid training curves, and test accuracy against parameters and time."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter

from cifarlab.evaluation.curve_panels import curve_panels
from cifarlab.figures import save_figure
from cifarlab.runs import Run


def plot_curves(runs: list[Run], names: list[str], path: str | Path) -> Path:
    """Upper row: training loss and accuracy; lower row: test loss and accuracy where the runs recorded the
    display-only test curve (eval.test_curve), else validation; one line per run, by epoch."""
    fig = Figure(figsize=(11, 8), layout="constrained")
    axes = fig.subplots(2, 2)
    panels = curve_panels(record for run in runs for record in run.history)
    for row_panels, row_axes in zip(panels, axes):
        for (key, title, percent), ax in zip(row_panels, row_axes):
            for run, name in zip(runs, names):
                points = [(r["epoch"], r[key]) for r in run.history if r.get(key) is not None and r.get("epoch") is not None]
                if points:
                    epochs, values = zip(*points)
                    ax.plot(epochs, [100 * v for v in values] if percent else values, marker="." if len(points) < 30 else None,
                            label=name)
            ax.set(title=title, xlabel="epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)), fontsize=8)
    return save_figure(fig, path)


def plot_accuracy_vs_cost(rows: list[dict], path: str | Path) -> Path:
    """Test top-1 against parameters (left) and training time (right), each run a labelled dot."""
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, key, label, scale in ((axes[0], "params", "parameters (M)", 1e6), (axes[1], "train_time_s", "training time (s)", 1)):
        shown = [r for r in rows if r.get("test_top1") is not None and r.get(key)]
        for r in shown:
            ax.scatter(r[key] / scale, r["test_top1"], s=30)
            ax.annotate(r["name"], (r[key] / scale, r["test_top1"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        if shown and max(r[key] for r in shown) > 10 * min(r[key] for r in shown):
            ax.set_xscale("log")  # zoo models span orders of magnitude in size and time
            ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set(xlabel=label, ylabel="test top-1 (%)", title=f"accuracy vs {label.split(' (')[0]}")
        ax.grid(alpha=0.3)
        if not shown:
            ax.text(0.5, 0.5, "no run with test scores", ha="center", va="center", transform=ax.transAxes)
    return save_figure(fig, path)
