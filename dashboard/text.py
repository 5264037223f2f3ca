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


def table_to_csv(table: pd.DataFrame, note: str | None = None) -> bytes:
    """A table as UTF-8 CSV bytes for a download button.

    Args:
        table: The table, written without its index.
        note: One line written first as a comment ("# ..."), e.g. the intended use; readers
            skip it with `pandas.read_csv(..., comment="#")`.
    """
    body = table.to_csv(index=False)
    if note:
        body = f"# {' '.join(note.split())}\n{body}"
    return body.encode("utf-8")


def rounded_threshold(threshold: float) -> float:
    """The threshold as every page shows it: a probability to two decimals (whole percent)."""
    return round(float(threshold), 2)


def threshold_percent(threshold: float) -> int:
    """The shown threshold in whole percent (42 for 0.4236)."""
    return round(rounded_threshold(threshold) * 100)


def format_threshold(threshold: float) -> str:
    """The shown threshold, "42%" for 0.4236: the one rounding used on every page."""
    return f"{threshold_percent(threshold)}%"
