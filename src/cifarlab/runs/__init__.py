"""The run folder: its file names, its lock, checkpoints, creating one and reading one back (`load_run`)."""

from cifarlab.runs.files import (
    BEST,
    CURVES,
    INDICES,
    LAST,
    LOCK_FILE,
    LR_FIND_JSON,
    LR_FIND_PLOT,
    METRICS,
    RECIPE,
    REPORT,
    ROBUSTNESS_JSON,
    ROBUSTNESS_PLOT,
    TENSORBOARD,
    WALL_FILE,
    WEIGHTS_NPZ,
    confusion_csv_file,
    confusion_plot_file,
    eval_file,
    misclassified_plot_file,
    reliability_plot_file,
    split_files,
)
from cifarlab.runs.metrics_file import read_evaluations, read_metrics
from cifarlab.runs.run import Run, load_run

__all__ = [
    "BEST", "CURVES", "INDICES", "LAST", "LOCK_FILE", "LR_FIND_JSON", "LR_FIND_PLOT", "METRICS", "RECIPE", "REPORT",
    "ROBUSTNESS_JSON", "ROBUSTNESS_PLOT", "TENSORBOARD", "WALL_FILE", "WEIGHTS_NPZ", "Run", "confusion_csv_file",
    "confusion_plot_file", "eval_file", "load_run", "misclassified_plot_file", "read_evaluations", "read_metrics",
    "reliability_plot_file", "split_files",
]
