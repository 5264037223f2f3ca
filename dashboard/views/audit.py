"""Audit: who predicted, trained, promoted, rolled back, changed a threshold or signed in, and
when; whether the hash chain is intact; filtered by day, user and action, with a CSV download."""

import datetime as dt

import streamlit as st

from dashboard import audit_log, auth, layout

ALL = "all"
DEFAULT_DAYS = 30

st.title("Audit")
st.caption(
    "The append-only audit trail: each entry holds the time (UTC), user, action, page or "
    "command, model version and model file SHA-256, and for a prediction the image's SHA-256, "
    "probability, label, threshold and out-of-distribution flag. Never pixels, file names or "
    "DICOM patient fields. Each entry is chained to the one before by SHA-256, so an entry "
    "edited, removed or inserted by hand shows below. `pneumonet audit export` prints the "
    "same entries, `pneumonet audit verify` checks the chain."
)
st.caption(audit_log.sign_in_trust_note(auth.access()))

intact, chain_line = audit_log.chain_status()
if intact:
    st.success(chain_line, icon=":material/verified:")
else:
    st.error(chain_line, icon=":material/gpp_bad:")

today = dt.datetime.now(dt.UTC).date()
days = st.date_input(
    "Days (UTC)",
    value=(today - dt.timedelta(days=DEFAULT_DAYS - 1), today),
    key="audit_days",
)
days = tuple(days) if isinstance(days, tuple | list) else (days, days)
first_day, last_day = (*days, None, None)[:2]  # one day picked so far: from it onwards

table = None
with layout.guard("read the audit trail"):
    table = audit_log.entries_table(first_day, last_day)
if table is None:
    st.stop()

left, right = st.columns(2)
users = [ALL, *sorted(table["user"].unique())]
user = left.selectbox("User", users, key="audit_user")
action = right.selectbox("Action", [ALL, *audit_log.ACTIONS], key="audit_action")
shown = audit_log.filter_entries(
    table, user=None if user == ALL else user, action=None if action == ALL else action
)

if shown.empty:
    st.info("No entries match these filters.", icon=":material/policy:")
    st.stop()
st.caption(f"{len(shown)} entries, newest first.")
st.dataframe(
    shown,
    hide_index=True,
    width="stretch",
    column_config={
        "time": st.column_config.TextColumn("time (UTC)", width="medium"),
        "probability": st.column_config.NumberColumn(format="%.3f", width="small"),
        "threshold": st.column_config.NumberColumn(format="%.3f", width="small"),
        "ood": st.column_config.CheckboxColumn("OOD", width="small"),
        "model_sha256": st.column_config.TextColumn(width="small"),
        "image_sha256": st.column_config.TextColumn(width="small"),
    },
)
layout.csv_download("Download entries (CSV)", shown, "pneumonet_audit.csv")
