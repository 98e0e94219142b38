"""cifarlab.evaluation: predictions with test-time augmentation, metrics, calibration, plots, reports.

Every scoring path takes one `EvalSettings` (preprocessing, split, TTA, batch size, memory format,
precision, device); `run_settings` builds a run's from its recipe. Scoring is separate from writing:
    settings = EvalSettings(Preprocessing(mean, std), tta="flip")  # or run_settings(model, recipe, mean, std)
    evaluation = score_split(model, images, labels, classes, settings)  # no files
    write_split(evaluation, images, labels, classes, run_dir, "test")  # eval_test.json, plots
    evaluate_split(model, images, labels, classes, run_dir, settings)  # both, for split settings.split
    write_report(run_dir)
"""

from cifarlab.evaluation.calibration import expected_calibration_error, reliability
from cifarlab.evaluation.metrics import (
    classification_metrics,
    confusion_matrix,
    image_losses,
    most_confused,
    top_losses,
)
from cifarlab.evaluation.plots import (
    plot_confusion,
    plot_curves,
    plot_reliability,
    plot_top_losses,
)
from cifarlab.evaluation.predict import predict
from cifarlab.evaluation.preprocessing import Preprocessing
from cifarlab.evaluation.report import write_report
from cifarlab.evaluation.scoring import Evaluation, score_split
from cifarlab.evaluation.settings import EvalSettings, model_settings, run_settings
from cifarlab.evaluation.split import evaluate_split, write_split
from cifarlab.evaluation.tta import SHIFT16, TTA_MODES, tta_softmax, tta_views

__all__ = [
    "SHIFT16",
    "TTA_MODES",
    "EvalSettings",
    "Evaluation",
    "Preprocessing",
    "classification_metrics",
    "confusion_matrix",
    "evaluate_split",
    "expected_calibration_error",
    "image_losses",
    "model_settings",
    "most_confused",
    "plot_confusion",
    "plot_curves",
    "plot_reliability",
    "plot_top_losses",
    "predict",
    "reliability",
    "run_settings",
    "score_split",
    "top_losses",
    "tta_softmax",
    "tta_views",
    "write_report",
    "write_split",
]
