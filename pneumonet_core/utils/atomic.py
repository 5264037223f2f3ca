"""Atomic file writes: readers see the old or the new file, never half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path


def write_json_atomically(path: str | os.PathLike, values: dict) -> None:
    """Write `values` as JSON to `path` through a temporary file and `os.replace`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(values, default=str))
    os.replace(temporary, path)
