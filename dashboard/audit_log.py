"""The audit trail as the dashboard uses it: who is acting, recording an action, recording each
displayed prediction once per session, and the entries the Audit page lists and downloads.

An entry never holds pixels, file names or DICOM patient fields: an upload is named by the
SHA-256 of its bytes (`pneumonet_core.governance.audit`). A failed write never loses a prediction or
undoes an action: `record` returns the failure for a one-line notice.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import auth
from pneumonet_core.governance import audit, audited
from pneumonet_core.storage import DatabaseError, describe_error

PREDICT_SOURCE = "dashboard:Predict"
AUDITED_KEY = "audit_recorded_predictions"  # session state: the predictions recorded so far
FAILED_KEY = "audit_failed_predictions"  # session state: {prediction: (tries, last failure)}
PREDICTION_WRITE_TRIES = 2  # a failed prediction write is retried once, at the next run
ACTIONS = audit.ACTIONS
# What a reader looks for first on the left; the long hashes and details on the right.
TABLE_COLUMNS = (
    "time",
    "user",
    "action",
    "label",
    "probability",
    "threshold",
    "ood",
    "model_version",
    "source",
    "details",
    "model_sha256",
    "image_sha256",
)
SHOWN_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # UTC, to the second


def current_user() -> str:
    """Who is acting: the signed-in e-mail, else the operating-system user."""
    return audit.current_user(auth.signed_in_email())


def failure_notice(result: audit.AuditResult) -> str:
    """The one-line notice for a failed audit write (its reason included)."""
    return f"Audit write failed: this was not recorded in the audit trail ({result.error})."


def pending_notice() -> str:
    """The one-line notice for an entry kept in the local spool while the database is down."""
    return (
        "Audit pending: the shared database is unreachable; this entry is kept on this server "
        "and recorded in the audit trail when the database is back."
    )


def audit_notice(result: audit.AuditResult | None) -> str | None:
    """The notice to show beside a result: a failed write, an entry pending, or None."""
    if result is None:
        return None
    if not result.ok:
        return failure_notice(result)
    return pending_notice() if result.pending else None


def record(action: str, *, source: str, notify: bool = True, **fields: Any) -> audit.AuditResult:
    """Append one entry for the current user (`audited.record`); never raises for a failed write.

    Args:
        action: One of `ACTIONS`.
        source: The page, e.g. "dashboard:Runs".
        notify: Show a one-line toast when the write failed.
        **fields: The entry's other fields (`model_version`, `model_sha256`, `threshold`...).

    Returns:
        The `audit.AuditResult`; a value the trail refuses (e.g. an e-mail holding a slash)
        is a failed write too, logged with the reason.
    """
    result = audited.record(action, source=source, email=auth.signed_in_email(), **fields)
    if notify:
        notify_failure(result)
    return result


def notify_failure(result: audit.AuditResult) -> None:
    """A one-line toast when an audit write failed or is pending (nothing when it worked)."""
    if notice := audit_notice(result):
        st.toast(notice, icon=":material/warning:")


def record_prediction(
    prediction: Any, *, model_version: str, model_sha256: str
) -> audit.AuditResult | None:
    """Record a displayed prediction, once per image, model and threshold in this session.

    Call it after the (cached) prediction returns, so that a cache hit is recorded too; the
    reruns of a page record nothing more. A failed write is retried once, at the next run,
    and never again in this session: later runs return the last failure without writing,
    so the page keeps its notice and a slider move costs no database wait.

    Args:
        prediction: An `inference.ImagePrediction` (an unreadable file's is not recorded).
        model_version: The model as resolved ("registry version 3", "shipped"...).
        model_sha256: The SHA-256 of the model file.

    Returns:
        The `audit.AuditResult` (a failure given up on included), or None when it was
        recorded before or there is no prediction.
    """
    if prediction.error is not None or not prediction.image_sha256:
        return None
    key = (prediction.image_sha256, model_sha256, float(prediction.threshold))
    recorded = st.session_state.setdefault(AUDITED_KEY, set())
    failed = st.session_state.setdefault(FAILED_KEY, {})
    if key in recorded:
        return None
    tries, last_failure = failed.get(key, (0, None))
    if tries >= PREDICTION_WRITE_TRIES:
        return last_failure
    result = audited.record_prediction(
        prediction,
        source=PREDICT_SOURCE,
        model_version=model_version,
        model_sha256=model_sha256,
        image_sha256=prediction.image_sha256,
        email=auth.signed_in_email(),
    )
    if result.ok:
        recorded.add(key)
        failed.pop(key, None)
    else:
        failed[key] = (tries + 1, result)
    return result


def chain_status() -> tuple[bool, str]:
    """(intact, one line): "audit chain intact through entry N", or where the chain breaks
    (`audit.verify_chain`); a trail that cannot be read is reported as not verified."""
    try:
        report = audit.verify_chain()
    except (DatabaseError, sqlite3.Error, OSError) as error:
        return False, f"audit chain not verified: {describe_error(error)}"
    return report.intact, report.message


def entries_table(
    first_day: dt.date | None = None, last_day: dt.date | None = None
) -> pd.DataFrame:
    """The entries of a range of days (UTC), newest first.

    Args:
        first_day: Keep entries on or after this day (None: from the first entry).
        last_day: Keep entries on or before this day (None: up to now).

    Returns:
        The `TABLE_COLUMNS`: `time` as "YYYY-MM-DD HH:MM:SS" (UTC), `details` as JSON text.

    Raises:
        PermissionError: The user's role is not "ml" (only the ML team reads the trail).
        ValueError: `last_day` is before `first_day`.
    """
    if not auth.may("ml"):
        raise PermissionError("Only the ML team may read the audit trail.")
    if first_day and last_day and last_day < first_day:
        raise ValueError(f"the last day {last_day} is before the first day {first_day}")
    until = None if last_day is None else (last_day + dt.timedelta(days=1)).isoformat()
    since = None if first_day is None else first_day.isoformat()
    entries = audit.read_entries(since=since, until=until)
    table = pd.DataFrame(entries, columns=list(audit.FIELDS))
    table["details"] = table["details"].map(
        lambda details: "" if details is None else json.dumps(details, sort_keys=True)
    )
    table["time"] = pd.to_datetime(table["time"], utc=True, format="ISO8601")
    table["time"] = table["time"].dt.strftime(SHOWN_TIME_FORMAT)
    return table.iloc[::-1].reset_index(drop=True)[list(TABLE_COLUMNS)]


def sign_in_trust_note(visitor: auth.Access) -> str:
    """One line on whose e-mail addresses get a role (shown on the Audit page)."""
    if not visitor.sign_in:
        return "Sign-in is off: the one local user has every role."
    if visitor.trusts_unverified:
        return (
            "Sign-in trusts e-mail addresses the provider does not mark verified "
            "([pneumonet.auth] trust_unverified_email = true)."
        )
    return "Sign-in gives a role only to e-mail addresses the provider marks verified."


def filter_entries(
    table: pd.DataFrame, *, user: str | None = None, action: str | None = None
) -> pd.DataFrame:
    """The rows of `entries_table` of one user and one action (None keeps every one)."""
    keep = pd.Series(True, index=table.index)
    if user is not None:
        keep &= table["user"] == user
    if action is not None:
        keep &= table["action"] == action
    return table[keep].reset_index(drop=True)
