"""The three figures of the BatchNorm study in the FDU layout: one shaded band per net over the training steps.

Each band spans the minimum to the maximum over the learning rates (and over the probed step sizes
where there are several), with the plain net in green and the BatchNorm net in red, as the FDU
figures and Santurkar et al. (2018) draw them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cifarlab.analysis.bn_study import BNStudy
from cifarlab.figures import save_figure

COLOURS = {"vgg_a": "tab:green", "vgg_a_bn": "tab:red"}
LABELS = {"vgg_a": "Standard VGG", "vgg_a_bn": "Standard VGG + BatchNorm"}
FIGURES = {"loss": "loss_landscape.png", "gradient": "gradient_predictiveness.png", "smoothness": "beta_smoothness.png"}


def _band(ax: Axes, steps: np.ndarray, rows: np.ndarray, model: str) -> None:
    """Shade min..max of `rows` (runs x steps, or runs x steps x sizes) per step, with the median as a line."""
    values = rows.reshape(rows.shape[0], rows.shape[1], -1).transpose(1, 0, 2).reshape(rows.shape[1], -1)
    colour = COLOURS.get(model)
    ax.fill_between(steps, values.min(1), values.max(1), color=colour, alpha=0.35, label=LABELS.get(model, model))
    ax.plot(steps, np.median(values, axis=1), color=colour, linewidth=0.8)


def _per_model(study: BNStudy, pick) -> dict[str, np.ndarray]:
    return {model: np.stack([pick(study.run(model, lr).trace) for lr in study.lrs]) for model in study.models}


def _finish(fig: Figure, axes: list[Axes], study: BNStudy) -> None:
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    lrs = ", ".join(f"{lr:g}" for lr in study.lrs)
    fig.suptitle(f"shaded: min to max over the learning rates {lrs} (and the probed step sizes, where probed); "
                 "line: median", fontsize=9)


def plot_loss_landscape(study: BNStudy, path: str | Path) -> Path:
    """Left: the training loss at every step (FDU); right: the loss along the gradient at the probed step sizes."""
    fig = Figure(figsize=(12, 4.5), layout="constrained")
    left, right = fig.subplots(1, 2)
    steps = np.arange(study.steps)
    for model, rows in _per_model(study, lambda t: t.loss).items():
        _band(left, steps, rows, model)
    probe_steps = study.runs[0].trace.probe_steps
    for model, rows in _per_model(study, lambda t: t.path_loss).items():
        _band(right, probe_steps, rows, model)
    left.set(title="loss landscape: training loss", ylabel="loss")
    multiples = ", ".join(f"{m:g}" for m in study.step_multiples)
    right.set(title=f"loss at w - eta g, eta = ({multiples}) x lr", ylabel="loss")
    _finish(fig, [left, right], study)
    return save_figure(fig, path)


def _plot_probed(study: BNStudy, path: str | Path, metric: Callable, title: str, ylabel: str) -> Path:
    """One quantity measured at the probed steps, a band per network over the runs."""
    fig = Figure(figsize=(7, 4.5), layout="constrained")
    ax = fig.subplots()
    for model, rows in _per_model(study, metric).items():
        _band(ax, study.runs[0].trace.probe_steps, rows, model)
    ax.set(title=title, ylabel=ylabel)
    _finish(fig, [ax], study)
    return save_figure(fig, path)


def plot_gradient_predictiveness(study: BNStudy, path: str | Path) -> Path:
    """The l2 change of the gradient along the gradient step, ||grad L(w - eta g) - g||, at the probed steps."""
    return _plot_probed(study, path, lambda t: t.gradient_change, "gradient predictiveness",
                        "||grad L(w - eta g) - grad L(w)||")


def plot_beta_smoothness(study: BNStudy, path: str | Path) -> Path:
    """Effective beta-smoothness: the largest gradient change per unit of distance moved, at the probed steps."""
    return _plot_probed(study, path, lambda t: t.smoothness, "effective beta-smoothness",
                        "max ||grad L(w') - grad L(w)|| / ||w' - w||")


def plot_bn_study(study: BNStudy, out: str | Path) -> list[Path]:
    """Write the three figures into `out`."""
    out = Path(out)
    return [plot_loss_landscape(study, out / FIGURES["loss"]),
            plot_gradient_predictiveness(study, out / FIGURES["gradient"]),
            plot_beta_smoothness(study, out / FIGURES["smoothness"])]
