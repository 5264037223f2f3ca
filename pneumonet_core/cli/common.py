"""Small helpers the command modules share."""

from __future__ import annotations

import math
from pathlib import Path

from pneumonet_core.utils import config


def default_evaluation_folder() -> Path:
    """The configured development folder (`test/`, else `val/`) under the data root."""
    root = config.data_root()
    for split in ("test", "val"):
        if (root / split).is_dir():
            return root / split
    return root


def json_safe(value):
    """The value with NaN and infinities as None, so `json.dumps` writes valid JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    return value


def data_dir(value: str | None) -> Path:
    """The named dataset folder, else the configured data root."""
    return Path(value) if value else config.data_root()
