"""The worklist: recent studies with PneumoNet's status, the most urgent first.

Built from the worker's state store (what was scored, skipped or failed) and, when the PACS
answers, its studies (those not yet seen are `pending`). Patient fields are read only when
asked for. A study is named by a short reference (the start of its UID's SHA-256), never by
its UID.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from pneumonet_core.inference.ood_checks import NOT_A_CHEST_XRAY, reason_kind
from pneumonet_core.pacs import client, state
from pneumonet_core.pacs.settings import PacsSettings
from pneumonet_core.pacs.worker import sha256_text

STATUS_ORDER = ("pneumonia", "ood", "normal", "no result", "pending", "failed", "skipped")
REFERENCE_LENGTH = 10


@dataclass
class WorklistRow:
    """One study as the worklist shows it (one instance when a study holds several)."""

    reference: str
    study_uid: str
    study_date: str | None
    modality: str | None
    status: str  # scored / skipped / failed / pending
    triage: str  # one of STATUS_ORDER
    probability: float | None = None
    label: str | None = None
    ood_reason: str | None = None
    reason: str | None = None
    series_uid: str | None = None
    sop_uid: str | None = None
    patient_name: str | None = None
    patient_id: str | None = None


@dataclass
class Worklist:
    rows: list[WorklistRow]
    pacs_error: str | None = None  # set when the PACS did not answer: rows are cached ones


def triage(record: state.InstanceRecord) -> str:
    if record.status in ("skipped", "failed"):
        return record.status
    if record.ood:
        return "no result" if reason_kind(record.ood_reason) == NOT_A_CHEST_XRAY else "ood"
    return "pneumonia" if record.label == "PNEUMONIA" else "normal"


def row_from_record(record: state.InstanceRecord) -> WorklistRow:
    return WorklistRow(
        reference=sha256_text(record.study_uid)[:REFERENCE_LENGTH],
        study_uid=record.study_uid,
        study_date=record.study_date,
        modality=record.modality,
        status="scored" if record.status in ("scored", "written") else record.status,
        triage=triage(record),
        probability=record.probability,
        label=record.label,
        ood_reason=record.ood_reason,
        reason=record.reason,
        series_uid=record.series_uid,
        sop_uid=record.sop_uid,
    )


def sort_key(row: WorklistRow) -> tuple:
    probability = -(row.probability or 0.0)
    return (STATUS_ORDER.index(row.triage), probability, row.study_date or "")


def build_worklist(
    settings: PacsSettings,
    model_sha256: str,
    *,
    days: int | None = None,
    show_patient: bool = False,
) -> Worklist:
    """The worklist for one model version, the most urgent first.

    Args:
        settings: The PACS (None URL: only the cached statuses are shown).
        model_sha256: The model version whose results are shown.
        days: Only studies of the last `days` days (by study date).
        show_patient: Read the patient name and ID from the PACS.
    """
    since = date.today() - timedelta(days=days) if days else None
    rows: dict[str, WorklistRow] = {}
    for record in state.records(model_sha256):
        if since and record.study_date and record.study_date < f"{since:%Y%m%d}":
            continue
        row = row_from_record(record)
        current = rows.get(record.study_uid)
        if current is None or sort_key(row) < sort_key(current):
            rows[record.study_uid] = row
    pacs_error = None
    if settings.configured:
        try:
            _add_pacs_studies(settings, rows, since, show_patient)
        except client.PacsUnavailable as error:
            pacs_error = str(error)
    return Worklist(sorted(rows.values(), key=sort_key), pacs_error)


def _add_pacs_studies(settings, rows, since, show_patient) -> None:
    studies = client.find_studies(client.connect(settings), since)
    for study in studies:
        study_uid = client.value(study, "StudyInstanceUID")
        modalities = _modalities(study)
        row = rows.get(study_uid)
        if row is None:
            if modalities and not modalities & {"CR", "DX"}:
                continue  # another modality's study: not on a chest X-ray worklist
            row = WorklistRow(
                reference=sha256_text(study_uid)[:REFERENCE_LENGTH],
                study_uid=study_uid,
                study_date=client.value(study, "StudyDate"),
                modality="/".join(sorted(modalities)) or None,
                status="pending",
                triage="pending",
            )
            rows[study_uid] = row
        if show_patient:
            row.patient_name = client.value(study, "PatientName")
            row.patient_id = client.value(study, "PatientID")


def _modalities(study: dict) -> set[str]:
    from pydicom.datadict import tag_for_keyword

    element = study.get(f"{tag_for_keyword('ModalitiesInStudy'):08X}", {})
    return {str(item).upper() for item in element.get("Value") or []}
