"""Predict: upload X-rays, see each probability, label and Grad-CAM; download the batch as CSV.

Each displayed prediction is recorded once in the audit trail (the image's SHA-256, never its
name or pixels).
"""

import streamlit as st

from dashboard import audit_log, inference, layout, model_registry, models, result_view, text

st.title("Predict")
st.caption(
    "Upload one or more chest X-rays (PNG, JPEG or DICOM). Files stay in memory and are never "
    "saved to disk."
)
layout.intended_use_note()

resolved, summary, model_readable = None, None, False
with layout.guard("read the active model"):
    resolved = models.resolved_model()  # once per run: the model shown is the model used
    summary = models.model_summary(resolved=resolved)
    model_readable = True
if not model_readable:
    st.stop()
if summary is None:
    st.info(
        "No model is available yet: train one on the Train page and promote it.",
        icon=":material/model_training:",
    )
    st.stop()

threshold = summary.threshold if resolved.threshold is None else resolved.threshold
st.markdown(
    f"Model **{summary.name}** ({resolved.label}) · input {summary.image_size} px · operating "
    f"threshold **{text.format_threshold(threshold)}** (probabilities at or above it are "
    "labelled PNEUMONIA)."
)
if resolved.operating_point is not None:
    st.caption(
        ":material/tune: Site operating point: "
        f"{model_registry.describe_operating_point(resolved.operating_point)}."
    )
if not summary.has_ood_guard:
    st.caption(
        "This model file carries no out-of-distribution statistics: only the simple checks "
        f"({inference.SIMPLE_OOD_CHECKS}) flag images, so an image unlike the training "
        "X-rays (an adult's, or one from another hospital's device) is not flagged. Fit them "
        "with `pneumonet ood fit --model PATH`."
    )
uploads = st.file_uploader(
    "Chest X-ray images",
    type=inference.UPLOAD_TYPES,
    accept_multiple_files=True,
    key=inference.uploader_key(),
    help="PNG, JPEG or DICOM (.dcm). Up to 200 MB per file.",
)
if not uploads:
    st.info("Upload images to see predictions.", icon=":material/upload_file:")
    st.stop()
st.button(
    "Clear all images",
    on_click=inference.clear_uploads,
    icon=":material/delete_sweep:",
    help="Remove every uploaded image and its result from this page, e.g. before the next "
    "patient's images. Nothing was stored.",
)


def batch_results(predictions: list[inference.ImagePrediction]) -> None:
    """The sortable batch table (most likely pneumonia first) and its CSV download.

    Args:
        predictions: Every result of this batch.
    """
    if not predictions:
        return
    st.header("Batch results")
    table = inference.predictions_table(predictions)
    shown = inference.shown_table(table)
    st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        column_config={
            "probability": layout.probability_column(),
            "threshold": st.column_config.NumberColumn("threshold", format="percent"),
            "warning": st.column_config.TextColumn(
                "warning",
                help="Why the probability is unreliable: not a chest X-ray (no label), or "
                "outside validated use (unlike the paediatric chest X-rays it was validated "
                "on). The full reasons are listed under the table.",
            ),
        },
    )
    for item in predictions:
        if item.ood_reason:
            st.caption(f":material/warning: **{item.file_name}**: {item.ood_reason}")
    layout.csv_download(
        "Download results (CSV)", table, "pneumonet_predictions.csv", note=text.intended_use()
    )


batch_area = st.container()
st.header("Images")
results = []
model_sha256 = models.model_sha256(resolved.path)  # hashed once per model file version
progress = st.progress(0.0, text="Analysing images…") if len(uploads) > 1 else None
for index, upload in enumerate(uploads):
    content = upload.getvalue()
    try:
        prediction = inference.predict_upload(
            upload.name, content, str(resolved.path), resolved.threshold
        )
    except Exception as error:  # noqa: BLE001  (one bad file must not stop the batch)
        st.error(f"{upload.name}: could not analyse this file. {text.describe_error(error)}")
        continue
    results.append(prediction)
    # After the cached prediction returns, so that a cache hit is recorded too (once).
    recorded = audit_log.record_prediction(
        prediction, model_version=resolved.label, model_sha256=model_sha256
    )
    notice = audit_log.audit_notice(recorded)
    result_view.render_prediction(  # Grad-CAM at once for the first image, the rest on request
        prediction,
        content,
        key=f"{index}_{upload.file_id}",
        audit_notice=notice,
        show_heatmap=not results[:-1],
    )
    if progress is not None:
        progress.progress(
            (index + 1) / len(uploads), text=f"Analysed {index + 1} of {len(uploads)}"
        )
if progress is not None:
    progress.empty()

with batch_area:
    batch_results(results)
