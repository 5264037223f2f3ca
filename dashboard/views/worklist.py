"""Worklist: recent CR/DX studies from the PACS with PneumoNet's result, the most urgent first.

Opening a row retrieves the image from the PACS and shows the same result view as Predict.
Patient name and ID stay hidden until asked for.
"""

import streamlit as st

from dashboard import auth, inference, layout, result_view, worklist

st.title("Worklist")
settings = None
with layout.guard("read the PACS settings"):
    settings = worklist.settings()
if settings is None:
    st.stop()
if not settings.configured:
    st.info(
        "No PACS is configured: set PNEUMONET_DICOMWEB_URL or `[pneumonet.pacs] url` to see "
        "its chest X-rays here.",
        icon=":material/lan:",
    )
    st.stop()
layout.intended_use_note()

left, right = st.columns([1, 2])
days = left.number_input("Studies of the last N days", 1, 3650, 30, key="worklist_days")
statuses = right.pills(
    "AI status",
    worklist.STATUSES,
    selection_mode="multi",
    default=list(worklist.STATUSES),
    key="worklist_status",
)
current = None
with layout.guard("read the worklist"):
    current = worklist.worklist(int(days), worklist.active_model_sha256())
if current is None:
    st.stop()
if current.pacs_error:
    st.warning(
        f"The PACS does not answer ({current.pacs_error}): showing the last known statuses.",
        icon=":material/cloud_off:",
    )
rows = worklist.filter_rows(current.rows, statuses=statuses)
if not rows:
    st.info("No studies match these filters.", icon=":material/inbox:")
    st.stop()
count = f"{len(rows)} study" if len(rows) == 1 else f"{len(rows)} studies"
st.caption(f"{count}, the most urgent first: PNEUMONIA, outside validated use, NORMAL.")
table = worklist.rows_table(rows)
st.dataframe(
    table,
    hide_index=True,
    width="stretch",
    column_config={
        "probability": layout.probability_column(),
        "OOD / reason": st.column_config.TextColumn("OOD / reason", width="large"),
    },
)

labels = [
    f"{row.reference} · {worklist.TRIAGE_LABELS.get(row.triage, row.triage)} · "
    f"{worklist.display_date(row.study_date) or '?'}"
    for row in rows
]
chosen = st.selectbox("Open a study", ["-", *labels], key="worklist_open")
if chosen == "-":
    st.stop()
row = rows[labels.index(chosen)]
if auth.may("ml") and st.button("Score now", icon=":material/bolt:", key="worklist_score"):
    with layout.guard("score the study"):
        summary = worklist.score_now(row.study_uid)
        st.success(f"Scored: {summary.line()}.", icon=":material/check:")
        st.rerun()
patient = st.expander(
    "Patient name and ID", key="worklist_patient", on_change="rerun", icon=":material/badge:"
)
with patient:
    if patient.open:
        with layout.guard("read the patient fields"):
            st.table(worklist.patient_fields(row.study_uid))
if row.sop_uid is None or row.status in ("pending", "skipped"):
    st.info(f"No result to show: {row.reason or row.status}.", icon=":material/info:")
    st.stop()
with layout.guard("retrieve the image from the PACS"):
    content = worklist.retrieve(row.study_uid, row.series_uid, row.sop_uid)
    prediction = inference.predict_upload(f"study {row.reference}", content)
    result_view.render_prediction(prediction, content, key=f"worklist_{row.reference}")
