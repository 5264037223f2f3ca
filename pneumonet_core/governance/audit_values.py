"""The values an audit entry may hold: known actions, short text that is never a path,
fractions in [0, 1], and `details` that name no file or patient (`audit.record` checks each).
"""

from __future__ import annotations

import json
import numbers
import re
from typing import Any

TRAINING_ACTIONS = ("train_start", "train_stop", "train_end")
ACTIONS = (
    "predict",
    *TRAINING_ACTIONS,
    "promote",
    "rollback",
    "set_threshold",
    "sign_in",
    "evaluate",
)
SOURCE_PATTERN = re.compile(r"[a-z][a-z_]*:[A-Za-z0-9_ -]{1,64}")  # "dashboard:Predict"
SHA256_PATTERN = re.compile(r"[0-9a-f]{64}")
DETAILS_KEY_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,39}")
FORBIDDEN_DETAILS_WORDS = ("file", "path", "patient", "pixel", "dicom")
MAXIMUM_DETAILS_KEYS = 16
TEXT_PATTERN = re.compile(r"[^/\\]{1,200}")  # short text, and never a path


def checked_action(action: str) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; expected one of {ACTIONS}")
    return action


def checked_text(name: str, value: Any, pattern: re.Pattern = TEXT_PATTERN) -> str | None:
    if value is not None and not (isinstance(value, str) and pattern.fullmatch(value)):
        raise ValueError(f"{name} must be short well-formed text, never a path: {value!r}")
    return value


def checked_fraction(name: str, value: Any) -> float | None:
    if value is not None and not (isinstance(value, numbers.Real) and 0 <= float(value) <= 1):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")  # NaN too
    return None if value is None else float(value)


def checked_details(details: Any) -> str:
    if not isinstance(details, dict) or len(details) > MAXIMUM_DETAILS_KEYS:
        raise ValueError(f"details must be a dict of at most 16 values: {details!r}")
    for key, value in details.items():
        identifying = any(word in str(key) for word in FORBIDDEN_DETAILS_WORDS)
        if identifying or not DETAILS_KEY_PATTERN.fullmatch(str(key)):
            raise ValueError(f"details key must be snake_case and name no file or patient: {key!r}")
        finite = not isinstance(value, float) or abs(value) < float("inf")  # NaN fails too
        if not (isinstance(value, str | int | float | None) and finite):  # bool is an int
            raise ValueError(f"details[{key!r}] must be a string, finite number or bool: {value!r}")
        checked_text(f"details[{key!r}]", value if isinstance(value, str) else None)
    return json.dumps(details, sort_keys=True)


TEXT_FIELDS = ("model_version", "label")
SHA256_FIELDS = ("model_sha256", "image_sha256")
FRACTION_FIELDS = ("probability", "threshold")


def checked_row(action: str, *, source: str, user: str, time: str, **fields: Any) -> dict:
    """One entry's stored values (all but its id and chain), each checked.

    Args:
        action: One of `ACTIONS`.
        source: "<kind>:<page or command>".
        user: Who, already resolved. time: When, as stored.
        fields: `audit.record`'s optional values (None when absent).

    Raises:
        ValueError: For an unknown action or field, or a malformed value.
    """
    known = (*TEXT_FIELDS, *SHA256_FIELDS, *FRACTION_FIELDS, "ood", "details")
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ValueError(f"unknown audit fields: {unknown}")
    ood, details = fields.get("ood"), fields.get("details")
    return {
        "time": time,
        "user": user,
        "action": checked_action(action),
        "source": checked_text("source", source, SOURCE_PATTERN),
        **{name: checked_text(name, fields.get(name)) for name in TEXT_FIELDS},
        **{name: checked_text(name, fields.get(name), SHA256_PATTERN) for name in SHA256_FIELDS},
        **{name: checked_fraction(name, fields.get(name)) for name in FRACTION_FIELDS},
        "ood": None if ood is None else int(bool(ood)),  # numpy's bool too
        "details": None if details is None else checked_details(details),
    }
