"""The one figure writer: a PNG written atomically, with nothing cut off at the canvas's edges.

A title, label or legend drawn past the canvas (a long suptitle above a constrained layout, say) would
be clipped by a plain `savefig`; `save_figure` measures every artist first and, only when something
sticks out, widens the saved area to hold it, so figures that fit keep their exact size.
"""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.transforms import Bbox

from cifarlab.atomic import atomic_path

_SLACK_PX = 0.5  # rounding in the renderer's extents, not an artist outside the canvas


def outside_canvas(fig: Figure) -> bool:
    """Whether any artist of `fig` reaches past its canvas (it would be cut off by a plain savefig)."""
    # A Figure made without pyplot has a bare canvas; Agg is what writes the PNG anyway.
    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    renderer = canvas.get_renderer()
    fig.draw_without_rendering()  # lay out first: constrained and tight layouts move artists when drawn
    drawn: Bbox = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
    canvas = fig.bbox
    return (drawn.x0 < canvas.x0 - _SLACK_PX or drawn.y0 < canvas.y0 - _SLACK_PX
            or drawn.x1 > canvas.x1 + _SLACK_PX or drawn.y1 > canvas.y1 + _SLACK_PX)


def save_figure(fig: Figure, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write `fig` as PNG to `path` atomically (format given, since the temp name has no .png)."""
    path = Path(path)
    fits = not outside_canvas(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches=None if fits else "tight", pad_inches=0.1)
    return path
