"""Evaluation metrics for a binary NORMAL (0) / PNEUMONIA (1) classifier.

NumPy and scikit-learn only: this module never imports TensorFlow or the training code.
Every function takes `(y_true, y_score)` where `y_true` holds 0/1 labels and `y_score` the
predicted probability of PNEUMONIA in [0, 1]; the decision threshold is keyword-only.
"""

from __future__ import annotations

import numpy as np
from sklearn import metrics as sk_metrics

from pneumonet_core import CLASS_NAMES

PROBABILITY_EPSILON = 1e-7


def _check_inputs(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(y_true).ravel()
    y_score = np.asarray(y_score, dtype=np.float64).ravel()
    if labels.size and not np.isin(labels, (0, 1)).all():
        # Checked before the cast to int, which would silently turn 0.5 into 0.
        raise ValueError(
            f"y_true must hold 0/1 labels, got values {sorted(set(labels.tolist()))[:5]}"
        )
    y_true = labels.astype(int)
    if y_true.shape != y_score.shape:
        raise ValueError(
            f"y_true and y_score must have the same length, got {y_true.size} and {y_score.size}"
        )
    if y_true.size == 0:
        raise ValueError("y_true is empty: nothing to evaluate")
    if not np.isfinite(y_score).all() or y_score.min() < 0 or y_score.max() > 1:
        raise ValueError("y_score must hold probabilities in [0, 1]")
    return y_true, y_score


def _check_threshold(threshold: float) -> float:
    if not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold!r}")
    return float(threshold)


def predict_labels(y_score, *, threshold: float = 0.5) -> np.ndarray:
    """Labels (1 = PNEUMONIA) for scores at or above the threshold."""
    threshold = _check_threshold(threshold)
    return (np.asarray(y_score, dtype=np.float64) >= threshold).astype(int)


def confusion_counts(y_true, y_score, *, threshold: float = 0.5) -> dict[str, int]:
    """Confusion-matrix counts `{tn, fp, fn, tp}` at a threshold (PNEUMONIA is positive)."""
    y_true, y_score = _check_inputs(y_true, y_score)
    y_pred = predict_labels(y_score, threshold=threshold)
    tn, fp, fn, tp = sk_metrics.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    return {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}


def _safe_ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else float("nan")


def log_loss_score(y_true, y_score) -> float:
    """Binary cross-entropy (lower is better), with probabilities clipped away from 0 and 1."""
    y_true, y_score = _check_inputs(y_true, y_score)
    clipped = np.clip(y_score, PROBABILITY_EPSILON, 1 - PROBABILITY_EPSILON)
    return float(sk_metrics.log_loss(y_true, clipped, labels=[0, 1]))


def roc_auc(y_true, y_score) -> float:
    """Area under the ROC curve; NaN when only one class is present."""
    y_true, y_score = _check_inputs(y_true, y_score)
    if np.unique(y_true).size < 2:
        return float("nan")
    return float(sk_metrics.roc_auc_score(y_true, y_score))


def pr_auc(y_true, y_score) -> float:
    """Average precision (area under the precision-recall curve) for PNEUMONIA."""
    y_true, y_score = _check_inputs(y_true, y_score)
    if y_true.sum() == 0:
        return float("nan")
    return float(sk_metrics.average_precision_score(y_true, y_score))


def binary_metrics(y_true, y_score, *, threshold: float = 0.5) -> dict:
    """All headline metrics at one threshold.

    Returns:
        Dict with `n, accuracy, loss, roc_auc, pr_auc, sensitivity, specificity, precision,
        f1, threshold, confusion_matrix` (`{tn, fp, fn, tp}`). Undefined ratios are NaN.
    """
    y_true, y_score = _check_inputs(y_true, y_score)
    threshold = _check_threshold(threshold)
    counts = confusion_counts(y_true, y_score, threshold=threshold)
    tn, fp, fn, tp = counts["tn"], counts["fp"], counts["fn"], counts["tp"]
    precision = _safe_ratio(tp, tp + fp)
    sensitivity = _safe_ratio(tp, tp + fn)
    return {
        "n": int(y_true.size),
        "accuracy": _safe_ratio(tp + tn, y_true.size),
        "loss": log_loss_score(y_true, y_score),
        "roc_auc": roc_auc(y_true, y_score),
        "pr_auc": pr_auc(y_true, y_score),
        "sensitivity": sensitivity,
        "specificity": _safe_ratio(tn, tn + fp),
        "precision": precision,
        "f1": _safe_ratio(2 * tp, 2 * tp + fp + fn),
        "threshold": threshold,
        "confusion_matrix": counts,
    }


def classification_report_dict(y_true, y_score, *, threshold: float = 0.5) -> dict:
    """Per-class precision, recall, F1 and support (scikit-learn's report, as a dict)."""
    y_true, y_score = _check_inputs(y_true, y_score)
    y_pred = predict_labels(y_score, threshold=threshold)
    return sk_metrics.classification_report(
        y_true,
        y_pred,
        labels=[0, 1],
        target_names=list(CLASS_NAMES),
        output_dict=True,
        zero_division=0,
    )


def roc_curve_points(y_true, y_score) -> dict[str, np.ndarray]:
    """ROC curve: `fpr`, `tpr` and the `thresholds` that produce them."""
    y_true, y_score = _check_inputs(y_true, y_score)
    fpr, tpr, thresholds = sk_metrics.roc_curve(y_true, y_score, drop_intermediate=False)
    return {"fpr": fpr, "tpr": tpr, "thresholds": np.clip(thresholds, 0.0, 1.0)}


def pr_curve_points(y_true, y_score) -> dict[str, np.ndarray]:
    """Precision-recall curve: `precision`, `recall` and `thresholds` (one fewer point)."""
    y_true, y_score = _check_inputs(y_true, y_score)
    precision, recall, thresholds = sk_metrics.precision_recall_curve(y_true, y_score)
    return {"precision": precision, "recall": recall, "thresholds": thresholds}


def calibration_bins(y_true, y_score, *, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Reliability diagram data over equal-width probability bins.

    Returns:
        Dict of arrays, one entry per non-empty bin: `mean_predicted`, `fraction_positive`,
        `count`, and the bin `lower`/`upper` edges.
    """
    y_true, y_score = _check_inputs(y_true, y_score)
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bin_index = np.clip(np.digitize(y_score, edges[1:-1], right=False), 0, n_bins - 1)
    counts = np.bincount(bin_index, minlength=n_bins)
    score_sums = np.bincount(bin_index, weights=y_score, minlength=n_bins)
    positive_sums = np.bincount(bin_index, weights=y_true, minlength=n_bins)
    filled = counts > 0
    return {
        "mean_predicted": score_sums[filled] / counts[filled],
        "fraction_positive": positive_sums[filled] / counts[filled],
        "count": counts[filled],
        "lower": edges[:-1][filled],
        "upper": edges[1:][filled],
    }


def expected_calibration_error(y_true, y_score, *, n_bins: int = 10) -> float:
    """ECE: the count-weighted mean gap between confidence and observed frequency (0 = ideal)."""
    bins = calibration_bins(y_true, y_score, n_bins=n_bins)
    gaps = np.abs(bins["mean_predicted"] - bins["fraction_positive"])
    return float(np.sum(gaps * bins["count"]) / np.sum(bins["count"]))


def brier_score(y_true, y_score) -> float:
    """Brier score: mean squared error of the probabilities (lower is better)."""
    y_true, y_score = _check_inputs(y_true, y_score)
    return float(sk_metrics.brier_score_loss(y_true, y_score))


def youden_threshold(y_true, y_score) -> float:
    """Threshold that maximises Youden's J = sensitivity + specificity - 1."""
    curve = roc_curve_points(y_true, y_score)
    best = int(np.argmax(curve["tpr"] - curve["fpr"]))
    return float(curve["thresholds"][best])


def threshold_for_sensitivity(y_true, y_score, *, min_sensitivity: float = 0.95) -> float:
    """Highest threshold whose sensitivity is at least `min_sensitivity`.

    The highest such threshold keeps specificity as high as that sensitivity allows.
    """
    if not 0.0 < min_sensitivity <= 1.0:
        raise ValueError(f"min_sensitivity must be in (0, 1], got {min_sensitivity!r}")
    curve = roc_curve_points(y_true, y_score)
    meets = np.flatnonzero(curve["tpr"] >= min_sensitivity)
    return float(curve["thresholds"][meets[0]])


def bootstrap_interval(
    y_true, y_score, metric, *, n_resamples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of `metric(y_true, y_score)`.

    Args:
        metric: A function `(y_true, y_score) -> float`.

    Returns:
        `(lower, upper)`; resamples where the metric is undefined are skipped.
    """
    y_true, y_score = _check_inputs(y_true, y_score)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_resamples):
        index = rng.integers(0, y_true.size, y_true.size)
        value = metric(y_true[index], y_score[index])
        if np.isfinite(value):
            values.append(value)
    if not values:
        return float("nan"), float("nan")
    tail = (1 - confidence) / 2 * 100
    lower, upper = np.percentile(values, [tail, 100 - tail])
    return float(lower), float(upper)
