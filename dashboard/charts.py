"""Plotly figures for the dashboard, large and legible when projected (18 px text and up).

Figures are built from plain arrays and tables that the dashboard modules return; nothing here
touches the model or the data on disk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

FONT_SIZE = 18
TITLE_SIZE = 22
COLOURS = ("#1f6f8b", "#d1495b", "#edae49", "#00798c", "#66a182", "#6c4f77", "#2e4057")
TRAIN_COLOUR = "#1f6f8b"
VALIDATION_COLOUR = "#d1495b"
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}
CLASS_NAMES = ("NORMAL", "PNEUMONIA")


def _style(figure: go.Figure, title: str, *, height: int = 560) -> go.Figure:
    figure.update_layout(
        title={"text": title, "font": {"size": TITLE_SIZE}},
        font={"size": FONT_SIZE, "family": "Source Sans Pro, Arial, sans-serif"},
        height=height,
        margin={"l": 80, "r": 30, "t": 70, "b": 40},
        template="plotly_white",
        legend={
            "font": {"size": FONT_SIZE - 2},
            "orientation": "h",
            "yanchor": "top",
            "y": -0.2,
            "xanchor": "left",
            "x": 0,
        },
        hoverlabel={"font": {"size": FONT_SIZE - 2}},
    )
    return figure


def probability_bar(probability: float, threshold: float) -> go.Figure:
    """A horizontal bar for one probability with the operating threshold marked.

    Args:
        probability: Probability of PNEUMONIA in [0, 1].
        threshold: The operating threshold in [0, 1].

    Returns:
        The figure.
    """
    colour = VALIDATION_COLOUR if probability >= threshold else TRAIN_COLOUR
    figure = go.Figure(
        go.Bar(
            x=[probability],
            y=["P(pneumonia)"],
            orientation="h",
            marker_color=colour,
            hovertemplate="probability %{x:.0%}<extra></extra>",
        )
    )
    _add_threshold_line(figure, threshold, label=f"threshold {threshold:.0%}")  # as Predict says it
    figure.update_xaxes(range=[0, 1], tickformat=".0%", tickvals=[0, 0.25, 0.5, 0.75, 1])
    figure.update_yaxes(showticklabels=False)
    _style(figure, "", height=170)
    figure.update_layout(margin={"l": 20, "r": 30, "t": 40, "b": 40})
    return figure


def _add_threshold_line(figure: go.Figure, threshold: float, label: str | None = None) -> None:
    """A dashed vertical line at the operating threshold (in [0, 1]), labelled on top."""
    figure.add_vline(
        x=threshold,
        line_width=3,
        line_dash="dash",
        line_color="#1b2a33",
        annotation_text=label or f"threshold {threshold:.2f}",
        annotation_position="top",
    )


def confusion_matrix(counts: dict[str, int], *, normalise: bool, threshold: float) -> go.Figure:
    """An annotated confusion matrix, rows = true class, columns = predicted class.

    Args:
        counts: `{tn, fp, fn, tp}` with PNEUMONIA as the positive class.
        normalise: Show each row as fractions of its true class instead of counts.
        threshold: The threshold the counts were taken at (for the title).

    Returns:
        The heatmap figure with hover details.
    """
    matrix = np.array([[counts["tn"], counts["fp"]], [counts["fn"], counts["tp"]]], dtype=float)
    row_totals = matrix.sum(axis=1, keepdims=True)
    fractions = np.divide(matrix, row_totals, out=np.zeros_like(matrix), where=row_totals > 0)
    names = [["True negative", "False positive"], ["False negative", "True positive"]]
    shown = fractions if normalise else matrix
    text = [
        [f"{fractions[i, j]:.1%}" if normalise else f"{int(matrix[i, j])}" for j in range(2)]
        for i in range(2)
    ]
    custom = [
        [[names[i][j], int(matrix[i, j]), fractions[i, j]] for j in range(2)] for i in range(2)
    ]
    figure = go.Figure(
        go.Heatmap(
            z=shown,
            x=[f"predicted {name}" for name in CLASS_NAMES],
            y=[f"true {name}" for name in CLASS_NAMES],
            text=text,
            texttemplate="%{text}",
            textfont={"size": 30},
            customdata=custom,
            hovertemplate=(
                "%{customdata[0]}<br>%{y}, %{x}<br>count %{customdata[1]}"
                "<br>%{customdata[2]:.1%} of the true class<extra></extra>"
            ),
            colorscale="Blues",
            showscale=False,
            zmin=0,
            zmax=1 if normalise else max(1.0, float(matrix.max())),
        )
    )
    figure.update_yaxes(autorange="reversed")
    kind = "normalised by true class" if normalise else "counts"
    return _style(figure, f"Confusion matrix at threshold {threshold:.2f} ({kind})", height=480)


@dataclasses.dataclass(frozen=True)
class _CurveKind:
    """How one kind of curve is drawn: its keys, legend area name, hover text and axis titles."""

    x_key: str
    y_key: str
    area_name: str
    hover: str
    x_title: str
    y_title: str


_ROC = _CurveKind(
    "fpr",
    "tpr",
    "AUC",
    "1 − specificity %{x:.3f}<br>sensitivity %{y:.3f}<extra></extra>",
    "1 − specificity (false-positive rate)",
    "sensitivity (true-positive rate)",
)
_PR = _CurveKind(
    "recall",
    "precision",
    "AP",
    "recall %{x:.3f}<br>precision %{y:.3f}<extra></extra>",
    "recall (sensitivity)",
    "precision",
)


def roc_curves(curves: Sequence[dict], *, title: str = "ROC curve") -> go.Figure:
    """ROC curves with their AUC and operating points, over the chance diagonal.

    Args:
        curves: One dict per model: `name`, `fpr`, `tpr`, `auc`, and optionally
            `operating_point` as `(fpr, tpr, threshold)`.
        title: The figure title.

    Returns:
        The figure.
    """
    chance = go.Scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"dash": "dot", "color": "#999"}
    )
    return _curves_figure(curves, _ROC, title, first_trace=chance)


def pr_curves(curves: Sequence[dict], *, title: str = "Precision-recall curve") -> go.Figure:
    """Precision-recall curves with their average precision (AP) and operating points.

    Takes what `roc_curves` takes, with `recall` and `precision` in place of `fpr` and `tpr`
    (`auc` is then the AP, and `operating_point` is `(recall, precision, threshold)`).
    """
    return _curves_figure(curves, _PR, title)


def _curves_figure(
    curves: Sequence[dict], kind: _CurveKind, title: str, first_trace: go.Scatter | None = None
) -> go.Figure:
    """One line per model, in its colour, with its area in the legend and its operating point."""
    figure = go.Figure()
    if first_trace is not None:
        figure.add_trace(first_trace)
    for index, curve in enumerate(curves):
        colour = COLOURS[index % len(COLOURS)]
        figure.add_trace(
            go.Scatter(
                x=curve[kind.x_key],
                y=curve[kind.y_key],
                mode="lines",
                name=f"{curve['name']} ({kind.area_name} {curve['auc']:.3f})",
                line={"width": 3, "color": colour},
                hovertemplate=kind.hover,
            )
        )
        _add_operating_point(figure, curve.get("operating_point"), colour, curve["name"])
    figure.update_xaxes(title=kind.x_title, range=[0, 1])
    figure.update_yaxes(title=kind.y_title, range=[0, 1.02])
    return _style(figure, title)


def _add_operating_point(figure: go.Figure, point, colour: str, name: str) -> None:
    if point is None:
        return
    x, y, threshold = point
    figure.add_trace(
        go.Scatter(
            x=[x],
            y=[y],
            mode="markers",
            name=f"{name} at threshold {threshold:.2f}",
            marker={"size": 16, "color": colour, "symbol": "diamond", "line": {"width": 2}},
            hovertemplate=(
                f"threshold {threshold:.2f}<br>x %{{x:.3f}}<br>y %{{y:.3f}}<extra></extra>"
            ),
        )
    )


def calibration(bins: dict[str, np.ndarray], *, ece: float) -> go.Figure:
    """Reliability diagram: observed pneumonia rate per predicted-probability bin.

    Args:
        bins: From `pneumonet_core.metrics.classification.calibration_bins`.
        ece: Expected calibration error, for the title.

    Returns:
        The figure.
    """
    figure = go.Figure()
    figure.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            name="perfect calibration",
            line={"dash": "dot", "color": "#999"},
        )
    )
    figure.add_trace(
        go.Scatter(
            x=bins["mean_predicted"],
            y=bins["fraction_positive"],
            mode="lines+markers",
            name="model",
            marker={"size": np.clip(6 + np.sqrt(bins["count"]), 8, 30), "color": TRAIN_COLOUR},
            line={"width": 3, "color": TRAIN_COLOUR},
            customdata=np.stack([bins["count"], bins["lower"], bins["upper"]], axis=-1),
            hovertemplate=(
                "bin %{customdata[1]:.1f}–%{customdata[2]:.1f}<br>mean predicted %{x:.3f}"
                "<br>observed %{y:.3f}<br>%{customdata[0]} images<extra></extra>"
            ),
        )
    )
    figure.update_xaxes(title="mean predicted probability", range=[0, 1])
    figure.update_yaxes(title="observed fraction with pneumonia", range=[0, 1.02])
    return _style(figure, f"Calibration (ECE {ece:.3f})")


def training_curves(
    history: pd.DataFrame,
    metric: str,
    *,
    title: str,
    summary_point: tuple[int, float | None, str] | None = None,
) -> go.Figure:
    """Train-versus-validation curve of one metric over epochs.

    Args:
        history: Columns `key, step, value` (MLflow metric history).
        metric: The metric name without prefix, e.g. "accuracy", "loss" or "auc".
        title: The figure title.
        summary_point: `(best epoch, the summary's value or None, its label)`: a dashed line at
            the epoch the summary describes, and the summary's figure on it.

    Returns:
        The figure (empty axes when nothing is recorded yet).
    """
    figure = go.Figure()
    for key, name, colour in (
        (metric, "train", TRAIN_COLOUR),
        (f"val_{metric}", "validation", VALIDATION_COLOUR),
    ):
        _add_epoch_trace(
            figure,
            history,
            key,
            name,
            colour,
            marker={"size": 9},
            hovertemplate=f"{name}<br>epoch %{{x}}<br>{metric} %{{y:.4f}}<extra></extra>",
        )
    if summary_point is not None:
        _add_summary_point(figure, *summary_point)
    figure.update_xaxes(title="epoch", rangemode="tozero")
    figure.update_yaxes(title=metric)
    return _style(figure, title, height=460)


def _add_summary_point(figure: go.Figure, epoch: int, value: float | None, label: str) -> None:
    figure.add_vline(x=epoch, line={"dash": "dash", "width": 2, "color": "#555555"})
    if value is not None:
        figure.add_trace(
            go.Scatter(
                x=[epoch],
                y=[value],
                mode="markers",
                name=label,
                marker={"size": 16, "symbol": "star", "color": "#111111"},
                hovertemplate=f"{label}<br>epoch %{{x}}<br>%{{y:.4f}}<extra></extra>",
            )
        )


def run_comparison(histories: dict[str, pd.DataFrame], metric: str) -> go.Figure:
    """Validation curves of several runs on one chart.

    Args:
        histories: Run name to its metric history (`key, step, value`).
        metric: The metric name, e.g. "val_auc".

    Returns:
        The figure.
    """
    figure = go.Figure()
    for index, (name, history) in enumerate(histories.items()):
        _add_epoch_trace(figure, history, metric, name, COLOURS[index % len(COLOURS)])
    figure.update_xaxes(title="epoch")
    figure.update_yaxes(title=metric)
    return _style(figure, f"{metric} per epoch", height=480)


def score_distribution(labels: np.ndarray, scores: np.ndarray, threshold: float) -> go.Figure:
    """Histogram of predicted probabilities per true class, with the threshold marked.

    Args:
        labels: True labels (0 = NORMAL, 1 = PNEUMONIA).
        scores: Predicted PNEUMONIA probabilities.
        threshold: The operating threshold.

    Returns:
        The figure.
    """
    figure = go.Figure()
    for label_index, colour in ((0, TRAIN_COLOUR), (1, VALIDATION_COLOUR)):
        figure.add_trace(
            go.Histogram(
                x=scores[labels == label_index],
                name=f"true {CLASS_NAMES[label_index]}",
                xbins={"start": 0.0, "end": 1.0, "size": 0.025},
                marker_color=colour,
                opacity=0.65,
                hovertemplate="P(pneumonia) %{x}<br>%{y} images<extra></extra>",
            )
        )
    _add_threshold_line(figure, threshold)
    figure.update_layout(barmode="overlay")
    figure.update_xaxes(title="predicted probability of pneumonia", range=[0, 1])
    figure.update_yaxes(title="images")
    return _style(figure, "Predicted probabilities by true class")


def _add_epoch_trace(figure, history, key, name, colour, **style) -> None:
    """One metric's values per epoch (`history`: `key, step, value`) as a line, if recorded."""
    rows = history[history["key"] == key].sort_values("step") if len(history) else history
    if len(rows):
        figure.add_trace(
            go.Scatter(
                x=rows["step"],
                y=rows["value"],
                mode="lines+markers",
                name=name,
                line={"width": 3, "color": colour},
                **style,
            )
        )
