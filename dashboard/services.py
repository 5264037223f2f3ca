"""The one thin layer between the dashboard pages and `pneumonet_core`.

Pages call only this module. It caches what is expensive (the model with `st.cache_resource`,
predictions with `st.cache_data`) and imports TensorFlow, Keras and MLflow lazily inside the
functions that need them, so the Home page never pays for them.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

import pneumonet_core
from pneumonet_core import config

# ----------------------------------------------------------------------------------------------
# General
# ----------------------------------------------------------------------------------------------


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
        The first line of its message, or its type in words when it has none.
    """
    message = str(error).strip().splitlines()
    if message and message[0]:
        return message[0][:300]
    return type(error).__name__.replace("Error", " error").strip()


def file_signature(path: str | os.PathLike) -> str:
    """A cache key for a file: its path, size and modification time.

    Args:
        path: The file.

    Returns:
        A string that changes whenever the file is replaced.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return f"{path}:missing"
    return f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def mlflow_ui_command() -> str:
    """The shell command that opens the same run store in the MLflow UI."""
    return f'mlflow ui --backend-store-uri "{config.tracking_uri()}"'


# ----------------------------------------------------------------------------------------------
# Model metadata (no TensorFlow)
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ModelSummary:
    """What the dashboard shows about a model without loading it.

    Attributes:
        path: The `.keras` file.
        source: Where it comes from ("PNEUMONET_MODEL", "promoted" or "shipped").
        name: A short display name.
        created_at: When it was saved (ISO text) or "unknown".
        architecture: The architecture name.
        image_size: Side of the square model input in pixels.
        threshold: The operating threshold for PNEUMONIA.
        metrics: Validation metrics (name to value), possibly empty.
        details: Other metadata fields worth showing.
    """

    path: str
    source: str
    name: str
    created_at: str
    architecture: str
    image_size: int
    threshold: float
    metrics: dict[str, float]
    details: dict[str, Any]


def active_model_path() -> Path:
    """The model the dashboard uses when none is picked."""
    return config.active_model_path()


def _model_source(path: Path) -> str:
    if os.environ.get("PNEUMONET_MODEL"):
        return "PNEUMONET_MODEL"
    if path == config.promoted_model_path():
        return "promoted"
    return "shipped"


def _metadata_dict(metadata: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(metadata):
        return dataclasses.asdict(metadata)
    if isinstance(metadata, dict):
        return dict(metadata)
    return dict(vars(metadata))


def _read_model_card(path: Path) -> dict[str, Any]:
    """The model card next to a model (`model_card.json`), or the shipped card for the shipped."""
    candidates = [path.with_name("model_card.json")]
    if path == config.shipped_model_path():
        candidates.insert(0, config.model_card_path())
    for candidate in candidates:
        if candidate.is_file():
            try:
                return json.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
    return {}


def _numeric_metrics(raw: Any) -> dict[str, float]:
    if not isinstance(raw, dict):
        return {}
    metrics = {}
    for key, value in raw.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            metrics[str(key)] = float(value)
    return metrics


def _card_metrics(card: dict[str, Any]) -> dict[str, float]:
    for key in ("validation_metrics", "val_metrics", "metrics"):
        if isinstance(card.get(key), dict):
            nested = card[key]
            if isinstance(nested.get("validation"), dict):
                return _numeric_metrics(nested["validation"])
            return _numeric_metrics(nested)
    return {}


@st.cache_data(show_spinner=False, max_entries=32)
def _model_summary_cached(path_text: str, signature: str, source: str) -> ModelSummary:
    del signature  # part of the cache key only
    from pneumonet_core import modelio

    path = Path(path_text)
    metadata = _metadata_dict(modelio.read_metadata(path))
    card = _read_model_card(path)
    metrics = _card_metrics(card) or _numeric_metrics(metadata.get("metrics"))
    shown = ("architecture", "image_size", "threshold", "created_at", "metrics", "class_names")
    details = {key: value for key, value in metadata.items() if key not in shown}
    return ModelSummary(
        path=str(path),
        source=source,
        name=str(card.get("name") or metadata.get("name") or path.stem),
        created_at=str(metadata.get("created_at") or card.get("created_at") or "unknown"),
        architecture=str(metadata.get("architecture", "unknown")),
        image_size=int(metadata.get("image_size", 0) or 0),
        threshold=float(metadata.get("threshold", 0.5)),
        metrics=metrics,
        details=details,
    )


def model_summary(path: str | os.PathLike | None = None) -> ModelSummary | None:
    """Describe a model from its metadata, without TensorFlow.

    Args:
        path: A `.keras` file; the active model when None.

    Returns:
        The summary, or None when the file does not exist.
    """
    path = Path(path) if path is not None else active_model_path()
    if not path.is_file():
        return None
    return _model_summary_cached(str(path), file_signature(path), _model_source(path))


# ----------------------------------------------------------------------------------------------
# Dataset
# ----------------------------------------------------------------------------------------------


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


def _counts_table(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=[*class_names(), "total"])
    table = pd.crosstab(frame["split"], frame["label"])
    for name in class_names():
        if name not in table.columns:
            table[name] = 0
    table = table[list(class_names())]
    table["total"] = table.sum(axis=1)
    table.index.name = "split"
    return table


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
        empty = pd.DataFrame(columns=[*class_names(), "total"])
        return DatasetSummary(str(root_path), empty, [describe_error(error)], 0)
    frame = scan.frame
    return DatasetSummary(
        root=str(root_path),
        counts=_counts_table(frame),
        problems=[str(problem) for problem in scan.problems],
        total=len(frame),
    )


# ----------------------------------------------------------------------------------------------
# Training job
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class JobSummary:
    """The background training job as the pages show it.

    Attributes:
        state: The job state, e.g. "starting", "running", "stopping", "finished", "failed".
        is_active: Whether the job is still running (or about to).
        run_id: The MLflow run id, once known.
        run_name: A short display name for the run.
        epoch: The current epoch (1-based) or 0 before the first.
        epochs: The number of epochs planned.
        batch: The current batch within the epoch.
        batches: Batches per epoch.
        elapsed_seconds: Seconds since the job started.
        eta_seconds: Estimated seconds left, or None when unknown.
        error: The error message of a failed run.
        model_path: The trained model file, once saved.
        raw: Every field of the core's status, for details.
    """

    state: str
    is_active: bool
    run_id: str | None
    run_name: str
    epoch: int
    epochs: int
    batch: int
    batches: int
    elapsed_seconds: float
    eta_seconds: float | None
    error: str | None
    model_path: str | None
    raw: dict[str, Any]


def job_summary() -> JobSummary | None:
    """The current (or last) training job, read from the job status file.

    Returns:
        The job, or None when no job has ever run.
    """
    try:
        from pneumonet_core import jobs
    except ImportError:
        return None
    status = jobs.read_job_status()
    if status is None:
        return None
    return _job_summary_from_status(_metadata_dict(status))


def _job_summary_from_status(raw: dict[str, Any]) -> JobSummary:
    state = str(raw.get("state") or raw.get("status") or "unknown")
    return JobSummary(
        state=state,
        is_active=state in ACTIVE_JOB_STATES,
        run_id=raw.get("run_id"),
        run_name=str(raw.get("run_name") or raw.get("run_id") or "training run"),
        epoch=int(raw.get("epoch") or 0),
        epochs=int(raw.get("epochs") or 0),
        batch=int(raw.get("batch") or 0),
        batches=int(raw.get("batches") or raw.get("steps_per_epoch") or 0),
        elapsed_seconds=float(raw.get("elapsed_seconds") or 0.0),
        eta_seconds=raw.get("eta_seconds"),
        error=raw.get("error"),
        model_path=raw.get("model_path"),
        raw=raw,
    )


ACTIVE_JOB_STATES = ("starting", "running", "stopping", "queued", "pending")
