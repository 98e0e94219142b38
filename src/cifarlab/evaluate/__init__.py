"""cifarlab.evaluate: predictions with test-time augmentation, metrics, calibration, plots, reports.

The two calls the rest of cifarlab needs:
    evaluate_split(model, images, labels, classes, out_dir, mean=..., std=..., split_name="test")
    write_report(run_dir)
"""

from cifarlab.evaluate.calibration import expected_calibration_error, reliability
from cifarlab.evaluate.metrics import classification_metrics, confusion_matrix
from cifarlab.evaluate.plots import plot_confusion, plot_curves, plot_misclassified, plot_reliability, read_metrics
from cifarlab.evaluate.predict import predict
from cifarlab.evaluate.report import evaluate_split, write_report
from cifarlab.evaluate.tta import SHIFT16, TTA_MODES, tta_softmax, tta_views

__all__ = [
    "SHIFT16",
    "TTA_MODES",
    "classification_metrics",
    "confusion_matrix",
    "evaluate_split",
    "expected_calibration_error",
    "plot_confusion",
    "plot_curves",
    "plot_misclassified",
    "plot_reliability",
    "predict",
    "read_metrics",
    "reliability",
    "tta_softmax",
    "tta_views",
    "write_report",
]
