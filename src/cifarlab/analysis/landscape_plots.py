"""Loss-landscape figures: 1-D loss and accuracy curves, 2-D contour and surface."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from cifarlab.figures import save_figure


def plot_curve(coordinates: np.ndarray, loss: np.ndarray, accuracy: np.ndarray, path: str | os.PathLike,
               xlabel: str, title: str, marks: Sequence[tuple[float, str]] = ()) -> Path:
    """Loss (left axis) and accuracy (right axis) along one line; `marks` label points such as the runs."""
    fig = Figure(figsize=(6.0, 4.0), layout="constrained")
    ax = fig.subplots()
    ax.plot(coordinates, loss, color="tab:blue", marker=".", label="loss")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("cross-entropy loss", color="tab:blue")
    twin = ax.twinx()
    twin.plot(coordinates, 100 * accuracy, color="tab:red", marker=".", linestyle="--", label="accuracy")
    twin.set_ylabel("accuracy (%)", color="tab:red")
    twin.set_ylim(0, 100)
    for position, label in marks:
        ax.axvline(position, color="grey", linewidth=0.8, linestyle=":")
        ax.annotate(label, (position, 1.0), xycoords=("data", "axes fraction"), fontsize=7, ha="center",
                    va="bottom")
    ax.set_title(title, fontsize=9, pad=14 if marks else 6)
    ax.grid(alpha=0.3)
    return save_figure(fig, path)


def plot_contour(coordinates: np.ndarray, loss: np.ndarray, path: str | os.PathLike, title: str,
                 levels: int = 30) -> Path:
    """Filled contours of the loss over the two directions; the trained weights are the cross at (0, 0)."""
    fig = Figure(figsize=(5.4, 4.6), layout="constrained")
    ax = fig.subplots()
    # Levels spaced geometrically: the loss grows by orders of magnitude away from the minimum,
    # and evenly spaced levels would leave the basin one flat colour.
    low, high = max(float(np.nanmin(loss)), 1e-6), float(np.nanmax(loss))
    spaced = np.geomspace(low, high, levels) if high > low * 1.001 else levels
    norm = LogNorm(low, high) if high > low * 1.001 else None
    # loss[i, j] is at (x_i, y_j): transposed so that rows follow y, as contourf expects.
    filled = ax.contourf(coordinates, coordinates, loss.T, levels=spaced, cmap="viridis", norm=norm)
    ax.contour(coordinates, coordinates, loss.T, levels=spaced, colors="white", linewidths=0.3)
    ax.plot([0], [0], marker="x", color="red", markersize=8)
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    ax.set_aspect("equal")
    ax.locator_params(nbins=5)
    ax.set_title(title, fontsize=9)
    ticks = np.geomspace(low, high, 6) if norm is not None else None
    fig.colorbar(filled, ax=ax, label="cross-entropy loss", ticks=ticks, format="%.3g", shrink=0.85)
    return save_figure(fig, path)


def plot_surface(coordinates: np.ndarray, loss: np.ndarray, path: str | os.PathLike, title: str) -> Path:
    """The loss as a 3-D surface over the two directions."""
    fig = Figure(figsize=(6.0, 5.0), layout="constrained")
    ax = fig.add_subplot(projection="3d")
    x, y = np.meshgrid(coordinates, coordinates, indexing="ij")
    ax.plot_surface(x, y, loss, cmap="viridis", linewidth=0, antialiased=True)
    ax.set_xlabel("direction 1")
    ax.set_ylabel("direction 2")
    ax.set_zlabel("loss")
    ax.set_title(title, fontsize=9)
    return save_figure(fig, path)
