"""A study's two plots: the metric over the trials (with the best so far), and how much each parameter mattered."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from cifarlab.figures import save_figure

HISTORY_PLOT = "optimization_history.png"
IMPORTANCE_PLOT = "param_importances.png"


def plot_history(rows: list[dict], metric: str, maximise: bool, path: str | Path) -> Path:
    """Each complete trial's value by trial number, the best so far as a step line, pruned trials at their last report."""
    fig = Figure(figsize=(8, 4.5), layout="constrained")
    ax = fig.subplots()
    complete = [(r["number"], r["value"]) for r in rows if r["state"] == "complete" and r["value"] is not None]
    pruned = [(r["number"], r["last_report"]) for r in rows if r["state"] == "pruned" and r["last_report"] is not None]
    if complete:
        ax.scatter(*zip(*complete), s=30, label="complete", zorder=3)
        best, line = None, []
        for number, value in complete:
            best = value if best is None or (value > best if maximise else value < best) else best
            line.append((number, best))
        last = max(r["number"] for r in rows)
        line.append((last, best))  # the best so far holds to the last trial, pruned ones included
        ax.step(*zip(*line), where="post", color="C3", label="best so far")
    if pruned:
        ax.scatter(*zip(*pruned), marker="x", color="0.5", label="pruned (last report)", zorder=2)
    if not complete and not pruned:
        ax.text(0.5, 0.5, "no finished trial yet", ha="center", va="center", transform=ax.transAxes)
    ax.set(xlabel="trial", ylabel=metric, title=f"{metric} over the trials ({'higher' if maximise else 'lower'} is better)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(alpha=0.3)
    if complete or pruned:
        ax.legend(fontsize=8)
    return save_figure(fig, path)


def plot_importances(importances: dict[str, float], path: str | Path) -> Path:
    """Each parameter's share of the metric's variance over the complete trials (Optuna's fANOVA), largest on top."""
    names = list(importances)[::-1]
    fig = Figure(figsize=(7, 1.2 + 0.45 * len(names)), layout="constrained")
    ax = fig.subplots()
    ax.barh(names, [importances[name] for name in names], color="C0")
    for index, name in enumerate(names):
        ax.text(importances[name], index, f" {importances[name]:.2f}", va="center", fontsize=8)
    ax.set(xlabel="importance (share of variance)", title="parameter importance", xlim=(0, 1.1))
    ax.grid(alpha=0.3, axis="x")
    return save_figure(fig, path)
