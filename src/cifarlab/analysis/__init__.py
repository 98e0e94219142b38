"""cifarlab.analysis: studies of trained runs.

    maps = gradcam(model, images, method="gradcam++", mean=run.mean, std=run.std)  # (N, H, W) in [0, 1]
    explain_run("runs/quick", "cams.png", method="gradcam", count=8)              # the gallery
    landscape_of_run("runs/quick", dims=2, points=21, extent=1.0)                 # filter-normalised slice
    interpolate_runs("runs/a", "runs/b")                                          # (1 - alpha) A + alpha B
"""

from cifarlab.analysis.activation_maps import METHODS, gradcam
from cifarlab.analysis.explain import explain_run
from cifarlab.analysis.landscape import (
    normalise_filters,
    random_direction,
    slice_surface,
)
from cifarlab.analysis.landscape_study import interpolate_runs, landscape_of_run
from cifarlab.analysis.target_layer import target_layer_name

__all__ = [
    "METHODS",
    "explain_run",
    "gradcam",
    "interpolate_runs",
    "landscape_of_run",
    "normalise_filters",
    "random_direction",
    "slice_surface",
    "target_layer_name",
]
