"""The dataset folder: where it is, what images it holds per split and class, what is wrong.

(Named in the singular so it never hides the `datasets` package when Streamlit puts this folder
on `sys.path`.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import text
from pneumonet_core.utils import config

EVALUABLE_SPLITS = ("val", "test")


@dataclasses.dataclass(frozen=True)
class DatasetSummary:
    """A scanned dataset folder.

    Attributes:
        root: The folder scanned.
        counts: Images per split (rows) and class (columns), with totals.
        problems: Human-readable problems found (empty when all is well).
        total: Number of images found.
    """

    root: str
    counts: pd.DataFrame
    problems: list[str]
    total: int


def default_data_root() -> str:
    """The dataset folder from `PNEUMONET_DATA` (or the project default)."""
    return str(config.data_root())


def _empty_counts() -> pd.DataFrame:
    return pd.DataFrame(columns=[*text.class_names(), "total"])


@st.cache_data(show_spinner="Scanning the dataset…", ttl=60, max_entries=16)
def scan_dataset(root: str) -> DatasetSummary:
    """Find the images under a dataset folder and count them.

    Args:
        root: A folder holding `train/`, `val/`... or directly `NORMAL/` and `PNEUMONIA/`.

    Returns:
        The counts and any problems found.
    """
    from pneumonet_core import data

    root_path = Path(root).expanduser()
    try:
        scan = data.scan_dataset(root_path)
    except data.DatasetError as error:
        return DatasetSummary(str(root_path), _empty_counts(), [text.describe_error(error)], 0)
    return DatasetSummary(
        root=str(root_path),
        counts=_empty_counts() if scan.frame.empty else scan.counts(),
        problems=[str(problem) for problem in scan.problems],
        total=len(scan.frame),
    )


def dataset_splits(data_root: str) -> list[str]:
    """Folders under the dataset root that can be evaluated as they are (e.g. val, test)."""
    root = Path(data_root)
    return [name for name in EVALUABLE_SPLITS if (root / name / "NORMAL").is_dir()]
