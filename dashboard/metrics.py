"""Metrics, curve data and tables of a model's scores at a threshold, for the Evaluate page.

Everything is recomputed from `evaluation.ModelScores` (cheap), so moving the threshold never
predicts again. The numbers come from `metrics.classification` (NumPy and scikit-learn only).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dashboard import text
from dashboard.evaluation import ModelScores

REPORT_ROWS = ("macro avg", "weighted avg")


def metrics_at(scores: ModelScores, threshold: float) -> dict[str, Any]:
    """Headline metrics at a threshold (`pneumonet_core.metrics.classification.binary_metrics`).

    Args:
        scores: A model's predictions.
        threshold: The operating threshold in [0, 1].

    Returns:
        Metric name to value (sensitivity, specificity, roc_auc, ..., `n`), and
        `confusion_matrix` as `{"tn", "fp", "fn", "tp"}` counts.
    """
    from pneumonet_core.metrics import classification as evaluate

    return evaluate.binary_metrics(scores.labels, scores.scores, threshold=threshold)


def classification_report(scores: ModelScores, threshold: float) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support as a table."""
    from pneumonet_core.metrics import classification as evaluate

    report = evaluate.classification_report_dict(scores.labels, scores.scores, threshold=threshold)
    rows = {
        key: value
        for key, value in report.items()
        if isinstance(value, dict) and key in (*text.class_names(), *REPORT_ROWS)
    }
    table = pd.DataFrame(rows).T[["precision", "recall", "f1-score", "support"]]
    table["support"] = table["support"].astype(int)
    table.index.name = "class"
    return table.round(3)


def roc_curve(scores: ModelScores, threshold: float) -> dict[str, Any]:
    """ROC points, AUC and the operating point at a threshold, for `charts.roc_curves`.

    Returns:
        `name`, `fpr` and `tpr` (arrays in [0, 1]), `auc`, and `operating_point` as
        `(false positive rate, sensitivity, threshold)`.
    """
    from pneumonet_core.metrics import classification as evaluate

    points = evaluate.roc_curve_points(scores.labels, scores.scores)
    metrics = metrics_at(scores, threshold)
    return {
        "name": scores.name,
        "fpr": points["fpr"],
        "tpr": points["tpr"],
        "auc": metrics["roc_auc"],
        "operating_point": (1 - metrics["specificity"], metrics["sensitivity"], threshold),
    }


def pr_curve(scores: ModelScores, threshold: float) -> dict[str, Any]:
    """Precision-recall points, average precision and the operating point.

    Returns:
        `name`, `recall` and `precision` (arrays in [0, 1]), `auc` (average precision), and
        `operating_point` as `(sensitivity, precision, threshold)`.
    """
    from pneumonet_core.metrics import classification as evaluate

    points = evaluate.pr_curve_points(scores.labels, scores.scores)
    metrics = metrics_at(scores, threshold)
    precision = metrics["precision"] if metrics["precision"] == metrics["precision"] else 1.0
    return {
        "name": scores.name,
        "recall": points["recall"],
        "precision": points["precision"],
        "auc": metrics["pr_auc"],
        "operating_point": (metrics["sensitivity"], precision, threshold),
    }


def calibration(scores: ModelScores, n_bins: int = 10) -> tuple[dict[str, np.ndarray], float]:
    """Reliability-diagram bins and the expected calibration error."""
    from pneumonet_core.metrics import classification as evaluate

    bins = evaluate.calibration_bins(scores.labels, scores.scores, n_bins=n_bins)
    ece = evaluate.expected_calibration_error(scores.labels, scores.scores, n_bins=n_bins)
    return bins, ece


def suggested_thresholds(scores: ModelScores) -> dict[str, float]:
    """Useful thresholds: the model's own, the Youden threshold (largest sensitivity +
    specificity - 1) and 95% sensitivity (each in [0, 1])."""
    from pneumonet_core.metrics import classification as evaluate

    suggestions = {"model's threshold": scores.threshold}
    if len(set(scores.labels.tolist())) == 2:
        suggestions["Youden threshold"] = evaluate.youden_threshold(scores.labels, scores.scores)
        suggestions["95% sensitivity"] = evaluate.threshold_for_sensitivity(
            scores.labels, scores.scores, min_sensitivity=0.95
        )
    return {name: float(np.clip(value, 0.0, 1.0)) for name, value in suggestions.items()}


def comparison_table(all_scores: list[ModelScores]) -> pd.DataFrame:
    """Side-by-side metrics of several models, each at its own threshold."""
    rows = []
    for scores in all_scores:
        metrics = metrics_at(scores, scores.threshold)
        rows.append(
            {
                "model": scores.name,
                "threshold": scores.threshold,
                "ROC AUC": metrics["roc_auc"],
                "PR AUC": metrics["pr_auc"],
                "sensitivity": metrics["sensitivity"],
                "specificity": metrics["specificity"],
                "accuracy": metrics["accuracy"],
                "F1": metrics["f1"],
                "images": metrics["n"],
            }
        )
    return pd.DataFrame(rows).round(3)


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Headline metrics as a one-column table (for the report).

    Args:
        metrics: From `metrics_at`.

    Returns:
        One row per numeric metric and per confusion count (TN, FP, FN, TP), column `value`.
    """
    rows = {
        key: value
        for key, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    rows.update({key.upper(): value for key, value in metrics["confusion_matrix"].items()})
    return pd.DataFrame({"value": rows}).rename_axis("metric")
