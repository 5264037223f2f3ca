"""Shared page furniture: styles, the error guard, the intended-use note, the sidebar footer,
and the blocks several pages show (a model, a dataset, a probability, a shortcut audit).

Nothing here imports TensorFlow, Keras or MLflow, so the Home page stays fast.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import pandas as pd
import streamlit as st

from dashboard import auth, dataset, inference, models, text, training

LOGGER = logging.getLogger("pneumonet.dashboard")
# The Train page's job panel and the sidebar read the job status this often, so both show
# the same epoch (`progress_text`).
LIVE_REFRESH_SECONDS = 2
ROLE_LABELS = {"clinician": "clinician", "ml": "ML team"}  # `auth.ROLES` as the sidebar names them

_STYLES = """
<style>
  /* Legible when projected: larger body text, tables and metric values. */
  [data-testid="stMetricValue"] { font-size: 2.1rem; }
  [data-testid="stMetricValue"] div { white-space: normal; overflow-wrap: anywhere; }
  [data-testid="stMetricLabel"] p { font-size: 1.05rem; }
  [data-testid="stDataFrame"] { font-size: 1rem; }
  .pneumonet-note { font-size: 0.95rem; color: #3d5361; }
</style>
"""


def apply_styles() -> None:
    """Add the small amount of CSS the dashboard needs."""
    st.html(_STYLES)


@contextlib.contextmanager
def guard(action: str) -> Iterator[None]:
    """Show a plain error instead of a traceback when the wrapped block fails.

    Args:
        action: What was being attempted, phrased to follow "Could not", e.g. "load the model".

    Yields:
        Nothing; the wrapped block runs inside.
    """
    try:
        yield
    except Exception as error:  # noqa: BLE001  (a clinician must never see a traceback)
        LOGGER.exception("Could not %s", action)
        st.error(f"Could not {action}. {text.describe_error(error)}", icon=":material/error:")


def csv_download(label: str, table: pd.DataFrame, file_name: str, note: str | None = None) -> None:
    """A button that downloads a table as a UTF-8 CSV file.

    Args:
        label: The button's text, e.g. "Download results (CSV)".
        table: The table, written without its index.
        file_name: The downloaded file's name.
        note: One line written first, as a "# " comment (e.g. the intended use).
    """
    st.download_button(
        label,
        text.table_to_csv(table, note),
        file_name=file_name,
        mime="text/csv",
        icon=":material/download:",
    )


def intended_use_note() -> None:
    """Show the intended-use statement next to a result."""
    st.caption(f":material/info: {text.intended_use()}")


def sidebar_footer(visitor: auth.Access | None = None) -> None:
    """Show the running training job (if any), the signed-in user with a Sign out button (when
    sign-in is on) in the sidebar. The intended use is said once, by the pages that show
    results (Home, Predict, Evaluate), not again in the sidebar.

    Call only for a user with a role: before sign-in the sidebar shows nothing.

    Args:
        visitor: The visitor's access (`auth.access()`, read here when not given).
    """
    visitor = visitor or auth.access()
    try:
        job = training.job_summary()
    except Exception:  # noqa: BLE001  (the sidebar must never break a page)
        job = None
    with st.sidebar:
        if job is not None and job.is_active:
            st.fragment(_sidebar_job, run_every=LIVE_REFRESH_SECONDS)()
        if visitor.signed_in:
            role = ROLE_LABELS.get(visitor.role or "", "no role")
            st.caption(f":material/account_circle: Signed in as `{visitor.email}` ({role})")
            sign_out_button("sidebar_sign_out")


def sign_out_button(key: str) -> None:
    """A Sign out button (Streamlit's `st.logout`, then the sign-in page)."""
    if st.button("Sign out", icon=":material/logout:", key=key):
        with guard("sign out"):
            auth.sign_out()


def progress_text(job: training.JobSummary) -> str:
    """The job's epoch as the sidebar and the Train page both say it: "epoch 10 of 30" (the
    epoch running, 1-based, as the curves and the model's best epoch count), or "preparing"."""
    return f"epoch {job.epoch} of {job.epochs}" if job.epoch else "preparing"


def _sidebar_job() -> None:
    """The running job in the sidebar, refreshed while it runs (everyone sees which job)."""
    try:
        job = training.job_summary()
    except Exception:  # noqa: BLE001
        return
    if job is None:
        return
    if job.is_active:
        st.info(f"Training {job.state} ({progress_text(job)})", icon=":material/sync:")
    else:
        st.caption(f"Last training run {job.state}.")


METRIC_LABELS = {
    "accuracy": "Accuracy",
    "roc_auc": "ROC AUC",
    "auc": "ROC AUC",
    "pr_auc": "PR AUC",
    "sensitivity": "Sensitivity",
    "specificity": "Specificity",
    "precision": "Precision",
    "f1": "F1",
    "loss": "Loss",
}


def format_metric(value: float) -> str:
    """Format a metric value for display (NaN shown as a dash)."""
    if value != value:  # NaN
        return "–"
    return f"{value:.3f}"


def model_summary_block(summary: models.ModelSummary) -> None:
    """Show a model's name, date, input size, threshold and validation metrics.

    Args:
        summary: The model as described by `models.model_summary`.
    """
    st.markdown(f"#### {summary.name}")
    st.caption(f"Created {summary.created_at} · source: {summary.source} · `{summary.path}`")
    columns = st.columns(3)
    columns[0].metric("Input size", f"{summary.image_size} px")
    columns[1].metric("Threshold", f"{summary.threshold:.2f}")
    # Text, not a metric: a metric cuts a long name ("pneumonet-ensemble") off with an ellipsis.
    columns[2].markdown(f"Architecture  \n**{summary.architecture}**")
    if summary.development_metrics:
        st.markdown(
            "**On images from outside the training set, used for model selection** "
            "(development figures)"
        )
        _metric_row(summary.development_metrics, summary.development_intervals, "development")
        st.caption(summary.development_label)
    elif summary.metrics:
        st.warning(
            "No figures on images from outside the training set: the validation figures "
            "below come from the training distribution and overstate accuracy on new images.",
            icon=":material/warning:",
        )
    if not _metric_row(summary.metrics, summary.intervals, "validation", header=True):
        st.caption("No validation metrics recorded for this model.")
    if summary.operating_point:
        st.caption(f"Operating point: {summary.operating_point}")


def _metric_row(
    metrics: dict[str, float], intervals: dict, kind: str, *, header: bool = False
) -> bool:
    """One row of headline metrics with their intervals; False when there is nothing to show."""
    shown = {key: value for key, value in metrics.items() if key in METRIC_LABELS}
    if not shown:
        return False
    if header:
        st.markdown("**Validation metrics** (patient-grouped split of the training set)")
    metric_columns = st.columns(min(len(shown), 6))
    for index, (key, value) in enumerate(list(shown.items())[:6]):
        interval = intervals.get(key)
        help_text = f"95% CI {interval[0]:.3f}–{interval[1]:.3f}" if interval else None
        metric_columns[index].metric(METRIC_LABELS[key], format_metric(value), help=help_text)
    shown_intervals = [
        f"{METRIC_LABELS[key]} {low:.3f}–{high:.3f}"
        for key, (low, high) in intervals.items()
        if key in shown
    ]
    if shown_intervals:
        st.caption(f"95% confidence intervals ({kind}): " + " · ".join(shown_intervals))
    return True


def shortcut_block(audit: dict, targets: dict) -> None:
    """The three shortcut-audit figures against their targets.

    Args:
        audit: `pneumonet_core.inference.shortcuts.audit`'s result (or the model card's copy).
        targets: `lungs_hidden_auc_max` and `outside_hidden_auc_max_drop`.
    """
    met = audit.get("meets_targets", {})
    columns = st.columns(4)
    columns[0].metric("ROC AUC, whole image", format_metric(audit["original_auc"]))
    columns[1].metric(
        "ROC AUC, lungs hidden",
        format_metric(audit["lungs_hidden_auc"]),
        help=f"Target: at most {targets['lungs_hidden_auc_max']}",
    )
    columns[2].metric(
        "ROC AUC, outside hidden",
        format_metric(audit["outside_hidden_auc"]),
        help=f"Target: within {targets['outside_hidden_auc_max_drop']} of the whole image",
    )
    share = audit.get("gradcam_lung_share")
    columns[3].metric(
        "Grad-CAM in the lungs",
        f"{share:.0%}" if isinstance(share, float) and share == share else "n/a",
        help=f"The lung region covers {audit.get('region_share', 0):.0%} of the image",
    )
    verdicts = [
        f"lungs hidden: {'met' if met.get('lungs_hidden_auc') else 'not met'}",
        f"outside hidden: {'met' if met.get('outside_hidden_auc') else 'not met'}",
    ]
    st.caption(f"{audit.get('n', '?')} images · targets " + " · ".join(verdicts))


def dataset_block(summary: dataset.DatasetSummary) -> None:
    """Show a scanned dataset: its folder, image counts and problems.

    Args:
        summary: The scan from `dataset.scan_dataset`.
    """
    st.caption(f"Folder: `{summary.root}`")
    if summary.total:
        st.dataframe(summary.counts, width="content")
    for problem in summary.problems:
        st.warning(problem, icon=":material/warning:")
    if not summary.total:
        st.info("No images found. Expected `NORMAL/` and `PNEUMONIA/` folders (per split).")


def probability_block(prediction: inference.ImagePrediction, key: str) -> None:
    """Show a probability against its operating threshold, and the resulting label.

    Args:
        prediction: A successful prediction.
        key: Unique on the page: two images with the same probability draw the same chart.
    """
    from dashboard import charts

    if prediction.label is None:  # not a chest X-ray: no label, not even a hedged one
        st.markdown("### :gray-background[no result]")
    elif prediction.ood:
        st.markdown(f"### :gray-background[{prediction.label} (unreliable)]")
    else:
        colour = "red" if prediction.label == "PNEUMONIA" else "green"
        st.markdown(f"### :{colour}-background[{prediction.label}]")
    shown_probability = round(prediction.probability * 100, 1)
    shown_threshold = text.threshold_percent(prediction.threshold)
    st.metric(
        "Probability of pneumonia",
        f"{shown_probability:.1f}%",
        delta=f"{shown_probability - shown_threshold:+.1f} points vs threshold "
        f"{text.format_threshold(prediction.threshold)}",
        delta_color="inverse",
    )
    st.plotly_chart(
        charts.probability_bar(
            prediction.probability, text.rounded_threshold(prediction.threshold)
        ),
        config=charts.PLOTLY_CONFIG,
        width="stretch",
        key=f"probability_{key}",
    )


def promotion_gate_verdict(verdict, table: pd.DataFrame) -> None:
    """The promotion gate's verdict, its reasons and the figures side by side (no button)."""
    reasons = " ".join(f"{reason[0].upper()}{reason[1:]}." for reason in verdict.reasons)
    draw = st.success if verdict.passed else st.error
    draw(f"Promotion gate: **{verdict.kind}**. {reasons}", icon=":material/rule:")
    if not table.empty:
        st.dataframe(table, hide_index=True, width="stretch")


def promotion_gate(verdict, table: pd.DataFrame, key: str) -> tuple[bool, str | None]:
    """The promotion gate's verdict with the figures side by side, then the Promote button:
    shown when the gate passes, or once the user typed an override reason.

    Args:
        verdict: The gate's `promotion.Verdict` (`model_registry.promotion_verdict`).
        table: `model_registry.verdict_table(verdict)`.
        key: The button's widget key (the reason's input is `<key>_override_reason`).

    Returns:
        `(pressed, override_reason)`: whether Promote was pressed, and the typed reason or None.
    """
    promotion_gate_verdict(verdict, table)
    reason = None
    if not verdict.passed:
        typed = st.text_input(
            "Override reason (promote anyway)",
            key=f"{key}_override_reason",
            max_chars=200,
            help="One line, kept in the audit trail and on the registry version.",
        )
        reason = typed.strip() or None
        if reason is None:
            st.caption("Promote appears once you type why this model should be active anyway.")
            return False, None
    label = "Promote to active model" if verdict.passed else "Promote anyway, with this reason"
    return st.button(label, icon=":material/verified:", key=key), reason


def probability_column():
    """The probability of pneumonia as a bar with its whole percent (batch table, worklist)."""
    return st.column_config.ProgressColumn(
        "P(pneumonia)", min_value=0.0, max_value=1.0, format="percent"
    )
