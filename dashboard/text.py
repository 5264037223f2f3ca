"""Wording shown to users: the intended use, class names, error reasons, durations, CSV exports.

Nothing here touches a model, a file or MLflow.
"""

from __future__ import annotations

import pandas as pd

import pneumonet_core
from pneumonet_core.utils import first_line


def intended_use() -> str:
    """The intended-use statement shown next to every result."""
    return pneumonet_core.INTENDED_USE


def class_names() -> tuple[str, str]:
    """The two class names, negative first."""
    return tuple(pneumonet_core.CLASS_NAMES)


def describe_error(error: BaseException) -> str:
    """A one-line, traceback-free reason for an error, fit to show a clinician.

    Args:
        error: The exception that was caught.

    Returns:
        The first line of its message (at most 300 characters, `errors.first_line`), or its
        type in words when it has none.
    """
    if str(error).strip():
        return first_line(error, limit=300)
    return type(error).__name__.replace("Error", " error").strip()


def format_duration(seconds: float | None) -> str:
    """Seconds as "1 h 02 min", "3 min 05 s" or "12 s" ("–" when unknown)."""
    if seconds is None or seconds != seconds:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def table_to_csv(table: pd.DataFrame) -> bytes:
    """A table as UTF-8 CSV bytes for a download button."""
    return table.to_csv(index=False).encode("utf-8")
