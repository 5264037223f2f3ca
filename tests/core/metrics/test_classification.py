"""evaluate: metric values checked against cases computed by hand."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from pneumonet_core.metrics import classification as evaluate

# Ten images: six NORMAL (0), four PNEUMONIA (1).
Y_TRUE = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
Y_SCORE = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.55, 0.3]
# At threshold 0.5: NORMAL predictions 0 0 0 0 1 1 -> tn 4, fp 2;
#                   PNEUMONIA predictions 1 1 1 0 -> tp 3, fn 1.
# Log loss: mean of -log(1 - p) over NORMAL and -log(p) over PNEUMONIA.
HAND_LOG_LOSS = (
    -(
        math.log(0.9)
        + math.log(0.8)
        + math.log(0.7)
        + math.log(0.6)
        + math.log(0.4)
        + math.log(0.3)
        + math.log(0.8)
        + math.log(0.9)
        + math.log(0.55)
        + math.log(0.3)
    )
    / 10
)
# ROC AUC: share of (PNEUMONIA, NORMAL) pairs ranked correctly, ties count half:
# 0.8 and 0.9 beat all 6; 0.55 beats 4; 0.3 beats 2 and ties 1 -> 18.5 / 24.
HAND_ROC_AUC = 18.5 / 24
# Average precision: recall steps of 0.25 at precision 1 (0.9), 1 (0.8), 3/5 (0.55), 4/8 (0.3).
HAND_PR_AUC = 0.25 * (1 + 1 + 0.6 + 0.5)


def test_confusion_counts_by_hand():
    assert evaluate.confusion_counts(Y_TRUE, Y_SCORE) == {"tn": 4, "fp": 2, "fn": 1, "tp": 3}


def test_threshold_is_inclusive():
    # At 0.3 every score >= 0.3 is PNEUMONIA: NORMAL 0.3 0.4 0.6 0.7 and all PNEUMONIA.
    assert evaluate.confusion_counts(Y_TRUE, Y_SCORE, threshold=0.3) == {
        "tn": 2,
        "fp": 4,
        "fn": 0,
        "tp": 4,
    }
    assert evaluate.predict_labels([0.29, 0.3, 0.31], threshold=0.3).tolist() == [0, 1, 1]


def test_binary_metrics_by_hand():
    metrics = evaluate.binary_metrics(Y_TRUE, Y_SCORE, threshold=0.5)
    assert metrics["n"] == 10
    assert metrics["accuracy"] == pytest.approx(7 / 10)
    assert metrics["sensitivity"] == pytest.approx(3 / 4)
    assert metrics["specificity"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx(3 / 5)
    assert metrics["f1"] == pytest.approx(2 * (3 / 5) * (3 / 4) / (3 / 5 + 3 / 4))
    assert metrics["loss"] == pytest.approx(HAND_LOG_LOSS)
    assert metrics["roc_auc"] == pytest.approx(HAND_ROC_AUC)
    assert metrics["pr_auc"] == pytest.approx(HAND_PR_AUC)
    assert metrics["threshold"] == 0.5
    assert metrics["confusion_matrix"] == {"tn": 4, "fp": 2, "fn": 1, "tp": 3}


def test_binary_metrics_at_another_threshold():
    metrics = evaluate.binary_metrics(Y_TRUE, Y_SCORE, threshold=0.8)
    assert metrics["confusion_matrix"] == {"tn": 6, "fp": 0, "fn": 2, "tp": 2}
    assert metrics["sensitivity"] == pytest.approx(0.5)
    assert metrics["specificity"] == pytest.approx(1.0)
    assert metrics["precision"] == pytest.approx(1.0)
    assert metrics["loss"] == pytest.approx(HAND_LOG_LOSS)  # loss ignores the threshold


def test_log_loss_clips_certain_mistakes():
    loss = evaluate.log_loss_score([1, 0], [0.0, 1.0])
    assert loss == pytest.approx(-math.log(evaluate.PROBABILITY_EPSILON), rel=1e-3)
    assert math.isfinite(loss)


def test_undefined_ratios_are_nan():
    only_pneumonia = evaluate.binary_metrics([1, 1, 1], [0.9, 0.2, 0.7])
    assert math.isnan(only_pneumonia["specificity"])
    assert math.isnan(only_pneumonia["roc_auc"])
    assert only_pneumonia["sensitivity"] == pytest.approx(2 / 3)
    only_normal = evaluate.binary_metrics([0, 0], [0.1, 0.2])
    assert math.isnan(only_normal["sensitivity"])
    assert math.isnan(only_normal["precision"])
    assert math.isnan(only_normal["pr_auc"])
    assert only_normal["specificity"] == 1.0


def test_classification_report_matches_hand_counts():
    report = evaluate.classification_report_dict(Y_TRUE, Y_SCORE)
    assert report["PNEUMONIA"]["recall"] == pytest.approx(3 / 4)
    assert report["NORMAL"]["recall"] == pytest.approx(4 / 6)
    assert report["NORMAL"]["precision"] == pytest.approx(4 / 5)
    assert report["PNEUMONIA"]["support"] == 4 and report["NORMAL"]["support"] == 6


def test_youden_threshold_by_hand():
    # J = tpr - fpr per threshold: 0.9 -> .25, 0.8 -> .5, 0.7 -> .33, 0.6 -> .17,
    # 0.55 -> .42, 0.4 -> .25, 0.3 -> .33: the best is 0.8.
    assert evaluate.youden_threshold(Y_TRUE, Y_SCORE) == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("minimum", "expected"),
    [(0.25, 0.9), (0.5, 0.8), (0.6, 0.55), (0.75, 0.55), (0.8, 0.3), (1.0, 0.3)],
)
def test_threshold_for_sensitivity_by_hand(minimum, expected):
    threshold = evaluate.threshold_for_sensitivity(Y_TRUE, Y_SCORE, min_sensitivity=minimum)
    assert threshold == pytest.approx(expected)
    achieved = evaluate.binary_metrics(Y_TRUE, Y_SCORE, threshold=threshold)["sensitivity"]
    assert achieved >= minimum


@pytest.mark.parametrize("bad", [0.0, -0.5, 1.5])
def test_threshold_for_sensitivity_rejects_bad_targets(bad):
    with pytest.raises(ValueError, match="min_sensitivity") as caught:
        evaluate.threshold_for_sensitivity(Y_TRUE, Y_SCORE, min_sensitivity=bad)
    assert repr(bad) in str(caught.value)


# Five images; two bins [0, 0.5) and [0.5, 1]:
# low bin: scores 0.1, 0.15 (mean 0.125), one positive of two (0.5): gap 0.375, weight 2;
# high bin: 0.8, 0.85, 0.9 (mean 0.85), two positives of three: gap 0.85 - 2/3, weight 3.
CAL_TRUE = [0, 1, 1, 0, 1]
CAL_SCORE = [0.1, 0.15, 0.8, 0.85, 0.9]


def test_expected_calibration_error_by_hand():
    expected = (2 * 0.375 + 3 * (0.85 - 2 / 3)) / 5
    assert expected == pytest.approx(0.26)
    ece = evaluate.expected_calibration_error(CAL_TRUE, CAL_SCORE, n_bins=2)
    assert ece == pytest.approx(0.26)


def test_calibration_bins_by_hand():
    bins = evaluate.calibration_bins(CAL_TRUE, CAL_SCORE, n_bins=2)
    np.testing.assert_allclose(bins["mean_predicted"], [0.125, 0.85])
    np.testing.assert_allclose(bins["fraction_positive"], [0.5, 2 / 3])
    np.testing.assert_array_equal(bins["count"], [2, 3])
    np.testing.assert_allclose(bins["lower"], [0.0, 0.5])
    np.testing.assert_allclose(bins["upper"], [0.5, 1.0])


def test_calibration_bins_edges_and_empty_bins():
    bins = evaluate.calibration_bins([0, 1, 1], [0.0, 0.5, 1.0], n_bins=10)
    np.testing.assert_allclose(bins["lower"], [0.0, 0.5, 0.9])  # 1.0 lands in the last bin
    np.testing.assert_array_equal(bins["count"], [1, 1, 1])
    with pytest.raises(ValueError, match="n_bins must be at least 1, got 0"):
        evaluate.calibration_bins([0, 1], [0.2, 0.8], n_bins=0)


def test_perfect_calibration_has_zero_ece():
    assert evaluate.expected_calibration_error([0, 1, 0, 1], [0.5] * 4, n_bins=10) == 0.0


def test_brier_score_by_hand():
    expected = (0.1**2 + 0.85**2 + 0.2**2 + 0.85**2 + 0.1**2) / 5
    assert expected == pytest.approx(0.301)
    assert evaluate.brier_score(CAL_TRUE, CAL_SCORE) == pytest.approx(0.301)


def test_curve_points_have_consistent_shapes():
    roc = evaluate.roc_curve_points(Y_TRUE, Y_SCORE)
    assert roc["fpr"].shape == roc["tpr"].shape == roc["thresholds"].shape
    assert roc["fpr"][0] == 0 and roc["tpr"][-1] == 1
    assert roc["thresholds"].max() <= 1.0  # sklearn's leading inf is clipped
    pr = evaluate.pr_curve_points(Y_TRUE, Y_SCORE)
    assert len(pr["thresholds"]) == len(pr["precision"]) - 1 == len(pr["recall"]) - 1


def test_bootstrap_interval_brackets_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 2, 200)
    y_score = np.clip(y_true * 0.3 + rng.random(200) * 0.7, 0, 1)
    accuracy = evaluate.binary_metrics(y_true, y_score)["accuracy"]

    def metric(t, s):
        return evaluate.binary_metrics(t, s)["accuracy"]

    lower, upper = evaluate.bootstrap_interval(y_true, y_score, metric, n_resamples=200, seed=1)
    assert lower < accuracy < upper
    assert upper - lower < 0.2
    again = evaluate.bootstrap_interval(y_true, y_score, metric, n_resamples=200, seed=1)
    assert again == (lower, upper)


@pytest.mark.parametrize(
    ("y_true", "y_score", "message"),
    [
        ([0, 1, 1], [0.2, 0.8], "same length, got 3 and 2"),
        ([], [], "empty"),
        ([0, 2], [0.1, 0.9], r"0/1 labels, got values \[0, 2\]"),
        ([0, 0.5, 1], [0.1, 0.5, 0.9], r"0/1 labels, got values \[0.0, 0.5, 1.0\]"),
        ([0, 1], [0.1, 1.2], r"probabilities in \[0, 1\]"),
        ([0, 1], [0.1, float("nan")], r"probabilities in \[0, 1\]"),
        ([0, 1], [-0.1, 0.5], r"probabilities in \[0, 1\]"),
    ],
)
def test_bad_inputs_raise_value_error(y_true, y_score, message):
    with pytest.raises(ValueError, match=message):
        evaluate.binary_metrics(y_true, y_score)


def test_float_and_boolean_labels_are_accepted():
    expected = evaluate.binary_metrics(Y_TRUE, Y_SCORE)
    as_float = evaluate.binary_metrics(np.asarray(Y_TRUE, dtype=np.float32), Y_SCORE)
    as_bool = evaluate.binary_metrics(np.asarray(Y_TRUE, dtype=bool), Y_SCORE)
    assert as_float == expected
    assert as_bool == expected


@pytest.mark.parametrize("bad", [1.5, -0.01])
def test_bad_threshold_raises_naming_it(bad):
    with pytest.raises(ValueError, match="threshold must be in") as caught:
        evaluate.binary_metrics(Y_TRUE, Y_SCORE, threshold=bad)
    assert repr(bad) in str(caught.value)


def test_evaluate_imports_no_tensorflow():
    code = (
        "import sys, pneumonet_core.metrics.classification\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules\n"
    )
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert completed.returncode == 0, completed.stderr
