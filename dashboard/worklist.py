"""The PACS worklist as the Worklist page uses it: settings, rows (cached a few seconds), an
image retrieved from the PACS, and "Score now" (role `ml`, checked again when it runs).

The rows come from `pneumonet_core.pacs.build_worklist`; an opened image goes through the same
`inference.predict_upload` path as an upload on Predict. Nothing retrieved is written to disk.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import auth, models
from pneumonet_core.pacs import PacsSettings, PacsWorker, build_worklist, client, pacs_settings

ROWS_TTL_S = 10
IMAGE_CACHE_ENTRIES = 16
TRIAGE_LABELS = {
    "pneumonia": "PNEUMONIA",
    "ood": "outside validated use",
    "normal": "NORMAL",
    "no result": "no result: not a chest X-ray",
    "pending": "pending",
    "failed": "failed",
    "skipped": "skipped",
}
STATUSES = ("scored", "pending", "failed", "skipped")


def settings() -> PacsSettings:
    """The PACS settings (`PNEUMONET_DICOMWEB_URL` or `[pneumonet.pacs] url`)."""
    return pacs_settings()


@st.cache_data(show_spinner=False, ttl=ROWS_TTL_S, max_entries=8)
def worklist(days: int, model_sha256: str, show_patient: bool = False):
    """`build_worklist` for the active model version (cached for `ROWS_TTL_S` seconds)."""
    return build_worklist(settings(), model_sha256, days=days, show_patient=show_patient)


def active_model_sha256() -> str:
    return models.model_sha256(models.resolved_model().path)


def rows_table(rows) -> pd.DataFrame:
    """The rows as the page's table: no UID and no patient field."""
    return pd.DataFrame(
        {
            "study": [row.reference for row in rows],
            "study date": [display_date(row.study_date) for row in rows],
            "modality": [row.modality or "" for row in rows],
            "AI status": [row.status for row in rows],
            "result": [TRIAGE_LABELS.get(row.triage, row.triage) for row in rows],
            "probability": [row.probability for row in rows],
            "OOD / reason": [row.ood_reason or row.reason or "" for row in rows],
        }
    )


def filter_rows(rows, *, statuses: list[str]):
    return [row for row in rows if row.status in statuses]


@st.cache_data(show_spinner=False, max_entries=IMAGE_CACHE_ENTRIES, ttl=1800)
def retrieve(study_uid: str, series_uid: str, sop_uid: str) -> bytes:
    """The instance's DICOM bytes from the PACS (WADO-RS), kept in memory only."""
    reference = client.InstanceRef(study_uid, series_uid, sop_uid, modality="")
    return client.retrieve_bytes(client.connect(settings()), reference)


def score_now(study_uid: str):
    """One worker pass over one study (role `ml`); returns its `PassSummary`.

    Raises:
        PermissionError: The user's role is not `ml`.
    """
    if not auth.may("ml"):
        raise PermissionError("Only the ML team may score studies now.")
    summary = PacsWorker(settings()).run_pass(study_uid=study_uid)
    worklist.clear()
    return summary


def patient_fields(study_uid: str) -> dict[str, str]:
    """The study's patient name and ID, read from the PACS only when asked for."""
    studies = client.find_studies(client.connect(settings()), study_uid=study_uid)
    for study in studies:
        if client.value(study, "StudyInstanceUID") == study_uid:
            return {
                "Patient name": client.value(study, "PatientName") or "",
                "Patient ID": client.value(study, "PatientID") or "",
            }
    return {}


def display_date(text: str | None) -> str:
    """A DICOM date (YYYYMMDD) as YYYY-MM-DD."""
    if not text or len(text) != 8:
        return text or ""
    return f"{text[:4]}-{text[4:6]}-{text[6:]}"
