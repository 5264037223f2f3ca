"""Standard DICOMweb only (QIDO-RS, WADO-RS, STOW-RS) through `dicomweb-client`, so any PACS
that offers DICOMweb works: Orthanc, dcm4chee, Google Cloud Healthcare, Azure DICOM."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

from pneumonet_core.pacs.settings import PacsSettings

REQUEST_TIMEOUT_S = 30
# The tags asked for in a search (DICOM JSON keys are the tags in hexadecimal).
SEARCH_FIELDS = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "Modality",
    "SeriesDescription",
    "StudyDate",
    "Manufacturer",
    "ViewPosition",
)
STUDY_FIELDS = ("StudyDate", "ModalitiesInStudy", "PatientName", "PatientID", "AccessionNumber")


class PacsUnavailable(RuntimeError):
    """The PACS did not answer, or answered with a server error; the message is one line."""


@dataclass(frozen=True)
class InstanceRef:
    """Where one instance lives, and what its headers say (from the searches)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    modality: str
    study_date: str | None = None
    series_description: str | None = None
    manufacturer: str | None = None
    view_position: str | None = None


def connect(settings: PacsSettings):
    """A `DICOMwebClient` for the configured root, with the bearer token or basic credentials."""
    import requests
    from dicomweb_client.api import DICOMwebClient

    if not settings.configured:
        raise ValueError("no PACS is configured: set PNEUMONET_DICOMWEB_URL")
    session = requests.Session()
    if settings.token:
        session.headers["Authorization"] = f"Bearer {settings.token}"
    elif settings.username:
        session.auth = (settings.username, settings.password or "")
    return DICOMwebClient(settings.url, session=session, timeout=REQUEST_TIMEOUT_S)


def value(attributes: dict, keyword: str) -> str | None:
    """The first value of a keyword in a DICOM JSON object, as text (None when absent)."""
    from pydicom.datadict import tag_for_keyword

    element = attributes.get(f"{tag_for_keyword(keyword):08X}", {})
    values = element.get("Value") or []
    if not values:
        return None
    first = values[0]
    return str(first.get("Alphabetic", "")) if isinstance(first, dict) else str(first)


def find_instances(client, since: date | None = None) -> list[InstanceRef]:
    """Every instance in the PACS (studies on or after `since`), with its series' headers, in
    one instance-level search (QIDO-RS), all pages of it.

    Raises:
        PacsUnavailable: The PACS cannot be reached.
    """
    filters = {"StudyDate": f"{since:%Y%m%d}-"} if since else {}
    found = guarded(
        client.search_for_instances,
        fields=SEARCH_FIELDS,
        search_filters=filters,
        get_remaining=True,
    )
    return [
        InstanceRef(
            study_uid=value(instance, "StudyInstanceUID"),
            series_uid=value(instance, "SeriesInstanceUID"),
            sop_uid=value(instance, "SOPInstanceUID"),
            modality=(value(instance, "Modality") or "").upper(),
            study_date=value(instance, "StudyDate"),
            series_description=value(instance, "SeriesDescription"),
            manufacturer=value(instance, "Manufacturer"),
            view_position=value(instance, "ViewPosition"),
        )
        for instance in found
    ]


def find_studies(client, since: date | None = None, study_uid: str | None = None) -> list[dict]:
    """The studies on or after `since` (or the one study `study_uid`), as DICOM JSON objects
    (patient fields included)."""
    filters = {"StudyDate": f"{since:%Y%m%d}-"} if since else {}
    if study_uid:
        filters["StudyInstanceUID"] = study_uid
    return guarded(client.search_for_studies, fields=STUDY_FIELDS, search_filters=filters)


def header_only(data: bytes):
    """The instance's attributes without its pixels (what a reference to it needs)."""
    import pydicom

    return pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)


def retrieve_bytes(client, reference: InstanceRef) -> bytes:
    """The instance as a DICOM file's bytes (WADO-RS), exactly as stored."""
    dataset = guarded(
        client.retrieve_instance, reference.study_uid, reference.series_uid, reference.sop_uid
    )
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def instance_exists(client, study_uid: str, sop_uid: str) -> bool:
    found = guarded(
        client.search_for_instances, study_uid, search_filters={"SOPInstanceUID": sop_uid}
    )
    return bool(found)


def store(client, datasets: list, study_uid: str) -> None:
    """STOW-RS the datasets into their study."""
    guarded(client.store_instances, datasets, study_uid)


def guarded(call, *arguments, **options):
    """Call the PACS; connection failures and server errors become `PacsUnavailable`."""
    import requests

    try:
        return call(*arguments, **options)
    except requests.exceptions.ConnectionError:
        raise PacsUnavailable("the PACS did not answer (connection refused or lost)") from None
    except requests.exceptions.Timeout:
        raise PacsUnavailable(f"the PACS did not answer within {REQUEST_TIMEOUT_S} s") from None
    except requests.exceptions.HTTPError as error:
        status = error.response.status_code if error.response is not None else None
        if status is None or status >= 500 or status in (401, 403):
            raise PacsUnavailable(f"the PACS answered HTTP {status}") from None
        raise
