"""Turning a caught exception into one short line for a user, a log or a status file."""

from __future__ import annotations


def first_line(error: BaseException, limit: int = 300) -> str:
    """The error's message as one line of at most `limit` characters.

    Blank lines and surrounding spaces are skipped. A first line that only introduces details
    on the following lines (it ends with ":") keeps its first detail line, so
    "all plugins failed:" becomes "all plugins failed: pylibjpeg: ...".

    Args:
        error: The exception that was caught.
        limit: The most characters returned.

    Returns:
        The first line of the message, or the exception's type name (e.g. "KeyError") when the
        message is empty.
    """
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    if not lines:
        return type(error).__name__[:limit]
    text = lines[0]
    if text.endswith(":") and len(lines) > 1:
        text = f"{text} {lines[1]}"
    return text[:limit]
