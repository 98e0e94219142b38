"""The names of a run folder's files.

Every file a run writes is named here and nowhere else:

    recipe.yaml                the resolved recipe; alone it reproduces the run
    indices.json               which images went to train and validation
    metrics.jsonl              one JSON object per line, `kind` "step" or "epoch"
    tensorboard/               the same numbers as TensorBoard scalars
    best.pt, last.pt           checkpoints (best on validation; the latest)
    eval_<split>.json          scores of one evaluated split (val, test, test_ema, ...)
    confusion_<split>.csv/png  its confusion matrix
    misclassified_<split>.png  its highest-loss errors
    reliability_<split>.png    its reliability diagram
    curves.png, report.md      training curves and the report gathering all of the above
"""

from __future__ import annotations

RECIPE = "recipe.yaml"
INDICES = "indices.json"
METRICS = "metrics.jsonl"
TENSORBOARD = "tensorboard"
BEST = "best.pt"
LAST = "last.pt"
REPORT = "report.md"
CURVES = "curves.png"
LR_FIND_JSON = "lr_find.json"
LR_FIND_PLOT = "lr_find.png"
WEIGHTS_NPZ = "weights.npz"
ROBUSTNESS_JSON = "robustness.json"  # accuracy and ECE per corruption and severity
ROBUSTNESS_PLOT = "robustness.png"  # its heatmap

WALL_FILE = "sweep_wall.json"  # a sweep point's {"wall_s": training + evaluation over all parts, "finished": bool}
LOCK_FILE = ".lock"  # held (flock) by the process training in the folder

_EVAL_PREFIX, _EVAL_SUFFIX = "eval_", ".json"
# Splits first in this order, any other (test_ema, corruptions ...) after them by name.
_SPLIT_ORDER = {"val": 0, "test": 1}


def eval_file(split: str) -> str:
    """Name of the scores file of one evaluated split: eval_<split>.json."""
    return f"{_EVAL_PREFIX}{split}{_EVAL_SUFFIX}"


def split_of_eval_file(name: str) -> str:
    """The split an eval_<split>.json file name scores."""
    return name[len(_EVAL_PREFIX) : -len(_EVAL_SUFFIX)]


def split_order(split: str) -> tuple[int, str]:
    """Sort key of splits: val, then test, then any other (test_ema, corruptions ...) by name."""
    return (_SPLIT_ORDER.get(split, 2), split)


def confusion_csv_file(split: str) -> str:
    """Name of a split's confusion matrix as CSV counts."""
    return f"confusion_{split}.csv"


def confusion_plot_file(split: str) -> str:
    """Name of a split's row-normalised confusion matrix plot."""
    return f"confusion_{split}.png"


def misclassified_plot_file(split: str) -> str:
    """Name of a split's gallery of highest-loss errors."""
    return f"misclassified_{split}.png"


def reliability_plot_file(split: str) -> str:
    """Name of a split's reliability diagram."""
    return f"reliability_{split}.png"


def split_files(split: str) -> dict[str, str]:
    """Every file an evaluation writes for `split`, by role (the `files` entry of eval_<split>.json)."""
    return {
        "eval": eval_file(split),
        "confusion_csv": confusion_csv_file(split),
        "confusion_png": confusion_plot_file(split),
        "misclassified": misclassified_plot_file(split),
        "reliability": reliability_plot_file(split),
    }
