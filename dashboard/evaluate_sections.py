"""Sections of the Evaluate page that are long enough to stand on their own (layout only)."""

from __future__ import annotations

import streamlit as st

from dashboard import charts, evaluation, metrics, models, report


def comparison(
    model_choices: dict[str, str],
    primary: evaluation.ModelScores,
    image_set: evaluation.EvaluationSet,
) -> report.ReportSection | None:
    """Two or more models side by side on the same images: curves and a metrics table.

    Args:
        model_choices: Every model that can be evaluated (label to path).
        primary: The primary model's predictions.
        image_set: The images both are evaluated on.

    Returns:
        The comparison for the report, or None when nothing is compared.
    """
    others = [label for label, path in model_choices.items() if path != primary.model_path]
    chosen = st.multiselect("Compare with", others, key="evaluate_compare")
    if not chosen:
        st.caption("Pick one or more models or runs to compare them with the one above.")
        return None
    with st.spinner("Predicting with the other models…"):
        all_scores = [primary] + [
            evaluation.model_scores(model_choices[label], image_set, models.short_model_name(label))
            for label in chosen
        ]
    table = metrics.comparison_table(all_scores)
    st.dataframe(table, hide_index=True, width="stretch")
    roc = charts.roc_curves(
        [metrics.roc_curve(item, item.threshold) for item in all_scores], title="ROC curves"
    )
    pr = charts.pr_curves(
        [metrics.pr_curve(item, item.threshold) for item in all_scores], title="PR curves"
    )
    left, right = st.columns(2)
    left.plotly_chart(roc, config=charts.PLOTLY_CONFIG, width="stretch", key="compare_roc")
    right.plotly_chart(pr, config=charts.PLOTLY_CONFIG, width="stretch", key="compare_pr")
    figures = [roc, pr]
    histories = evaluation.run_histories([item.model_path for item in all_scores])
    if histories:
        left, right = st.columns(2)
        for column, metric in zip((left, right), ("val_auc", "val_loss"), strict=True):
            figure = charts.run_comparison(histories, metric)
            column.plotly_chart(
                figure, config=charts.PLOTLY_CONFIG, width="stretch", key=f"compare_{metric}"
            )
            figures.append(figure)
    return report.ReportSection(
        "Model comparison",
        text=["Each model at its own operating threshold, on the same images."],
        figures=figures,
        tables=[("Metrics", table)],
    )
