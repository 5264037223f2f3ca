"""Binary classification metrics in scikit-learn's form, `f(y_true, y_score, *, threshold=...)`
(NumPy and scikit-learn only)."""

from pneumonet_core.metrics import classification
from pneumonet_core.metrics.classification import (
    binary_metrics,
    bootstrap_interval,
    brier_score,
    calibration_bins,
    classification_report_dict,
    confusion_counts,
    expected_calibration_error,
    pr_curve_points,
    roc_auc,
    roc_curve_points,
    threshold_for_sensitivity,
    youden_threshold,
)

__all__ = [
    "binary_metrics",
    "bootstrap_interval",
    "brier_score",
    "calibration_bins",
    "classification",
    "classification_report_dict",
    "confusion_counts",
    "expected_calibration_error",
    "pr_curve_points",
    "roc_auc",
    "roc_curve_points",
    "threshold_for_sensitivity",
    "youden_threshold",
]
