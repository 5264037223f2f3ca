"""What an audit entry may hold: the actions, and checks that refuse a path, a file name or
an identifying detail before anything is written (`ValueError` naming the bad value)."""

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


def checked_sha256(name: str, value: Any) -> str | None:
    """None, or 64 lower-case hexadecimal characters."""
    return checked_text(name, value, SHA256_PATTERN)


def checked_flag(name: str, value: Any) -> int | None:
    """None, or the flag as 0 or 1 (numpy's bool too)."""
    return None if value is None else int(bool(value))


def checked_optional_details(name: str, value: Any) -> str | None:
    return None if value is None else checked_details(value)


# Each optional field of an entry, with the check its value must pass.
FIELD_CHECKS = {
    "model_version": checked_text,
    "model_sha256": checked_sha256,
    "image_sha256": checked_sha256,
    "probability": checked_fraction,
    "label": checked_text,
    "threshold": checked_fraction,
    "ood": checked_flag,
    "details": checked_optional_details,
}


def checked_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """Every optional field, checked (None where not given).

    Raises:
        ValueError: An unknown field or a malformed value.
    """
    unknown = sorted(set(fields) - set(FIELD_CHECKS))
    if unknown:
        raise ValueError(f"unknown audit fields: {unknown}")
    return {name: check(name, fields.get(name)) for name, check in FIELD_CHECKS.items()}
