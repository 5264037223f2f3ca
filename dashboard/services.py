"""The one thin layer between the dashboard pages and `pneumonet_core`.

Pages call only this module. It caches what is expensive (the model with `st.cache_resource`,
predictions with `st.cache_data`) and imports TensorFlow, Keras and MLflow lazily inside the
functions that need them, so the Home page never pays for them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

import pneumonet_core
from pneumonet_core import config
from pneumonet_core.ood import SIMPLE_CHECKS_SUMMARY

SIMPLE_OOD_CHECKS = SIMPLE_CHECKS_SUMMARY  # what is flagged without feature statistics

# ----------------------------------------------------------------------------------------------
# General
# ----------------------------------------------------------------------------------------------


def model_limitations() -> list[str]:
    """Known limitations: the active model's card, else the project's standard list."""
    try:
        summary = model_summary()
    except Exception:  # noqa: BLE001  (an unreadable model is reported where it is shown)
        summary = None
    if summary is not None and summary.limitations:
        return summary.limitations
    from pneumonet_core import modelcard

    return list(modelcard.LIMITATIONS)


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
        intervals: 95% confidence intervals of some metrics (name to (low, high)).
        limitations: Known limitations from the model card (empty without a card).
        operating_point: How the threshold was chosen, from the model card.
        details: Other metadata fields worth showing.
        has_ood_guard: Whether the file carries the feature statistics that flag images unlike
            its training X-rays (without them only the simple checks run).
        development_metrics: Metrics on images from outside the training set (the model
            card's development figures), possibly empty.
        development_intervals: Their 95% confidence intervals.
        development_label: What those images are, as the card words it.
        shortcut_audit: The card's shortcut audit (`pneumonet_core.shortcuts.audit`), or {}.
    """

    path: str
    source: str
    name: str
    created_at: str
    architecture: str
    image_size: int
    threshold: float
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    limitations: list[str]
    operating_point: str
    details: dict[str, Any]
    has_ood_guard: bool = False
    development_metrics: dict[str, float] = dataclasses.field(default_factory=dict)
    development_intervals: dict[str, tuple[float, float]] = dataclasses.field(default_factory=dict)
    development_label: str = ""
    shortcut_audit: dict[str, Any] = dataclasses.field(default_factory=dict)


def active_model_path() -> Path:
    """The model the dashboard uses when none is picked."""
    return config.active_model_path()


def _model_source(path: Path) -> str:
    if path == config.active_model_path() and os.environ.get("PNEUMONET_MODEL"):
        return "PNEUMONET_MODEL"
    if path == config.promoted_model_path():
        return "promoted"
    if path == config.shipped_model_path():
        return "shipped"
    return "training run"


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


def _metric_values(raw: Any) -> tuple[dict[str, float], dict[str, tuple[float, float]]]:
    """Numeric metrics, plain (`0.97`) or with an interval (`{"value", "ci_low", "ci_high"}`)."""
    values, intervals = {}, {}
    if not isinstance(raw, dict):
        return values, intervals
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(value.get("value"), int | float):
            values[str(key)] = float(value["value"])
            if {"ci_low", "ci_high"} <= set(value):
                intervals[str(key)] = (float(value["ci_low"]), float(value["ci_high"]))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            values[str(key)] = float(value)
    return values, intervals


def _card_metrics(card: dict[str, Any]) -> tuple[dict[str, float], dict[str, tuple]]:
    """Validation metrics from a model card (or a metadata `metrics` block)."""
    for key in ("validation", "validation_metrics", "val_metrics", "metrics"):
        block = card.get(key)
        if isinstance(block, dict):
            if isinstance(block.get("validation"), dict):
                block = block["validation"]
            return _metric_values(block)
    return {}, {}


@st.cache_data(show_spinner=False, max_entries=32)
def _model_summary_cached(path_text: str, signature: str, source: str) -> ModelSummary:
    del signature  # part of the cache key only
    from pneumonet_core import modelio
    from pneumonet_core.ood import OOD_ENTRY

    path = Path(path_text)
    metadata = _metadata_dict(modelio.read_metadata(path))
    card = _read_model_card(path)
    metrics, intervals = _card_metrics(card)
    if not metrics:
        metrics, intervals = _card_metrics({"metrics": metadata.get("metrics")})
    development = card.get("development") if isinstance(card.get("development"), dict) else {}
    development_metrics, development_intervals = _metric_values(development.get("metrics"))
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
        intervals=intervals,
        limitations=[str(item) for item in card.get("limitations", [])],
        operating_point=str(card.get("operating_point", "")),
        details=details,
        has_ood_guard=modelio.read_model_entry(path, OOD_ENTRY) is not None,
        development_metrics=development_metrics,
        development_intervals=development_intervals,
        development_label=" ".join(
            str(development.get(key, "")) for key in ("label", "set")
        ).strip(),
        shortcut_audit=dict(card.get("shortcut_audit") or {}),
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
# Training job (runs in a background process; its state lives in the job status file)
# ----------------------------------------------------------------------------------------------

IMAGE_SIZES = [64, 96, 128, 150, 192, 224, 256]
BATCH_SIZES = [8, 16, 32, 64]
LEARNING_RATES = [1e-4, 3e-4, 1e-3, 2e-3, 3e-3]


@dataclasses.dataclass(frozen=True)
class JobSummary:
    """The background training job as the pages show it.

    Attributes:
        state: "starting", "running", "stopping", "finished", "stopped" or "failed".
        is_active: Whether the job is still running (or about to).
        job_id: The job's identifier.
        run_id: The MLflow run id, once known.
        run_name: A short display name for the run.
        epoch: The current epoch (1-based) or 0 before the first.
        epochs: The number of epochs planned.
        batch: The current batch within the epoch.
        batches: Batches per epoch.
        progress: Fraction of all batches done, in [0, 1].
        elapsed_seconds: Seconds since the job started.
        eta_seconds: Estimated seconds left, or None when unknown.
        error: The error message of a failed run.
        model_path: The trained model file, once saved.
        settings: The training settings of the job.
    """

    state: str
    is_active: bool
    job_id: str
    run_id: str | None
    run_name: str
    epoch: int
    epochs: int
    batch: int
    batches: int
    progress: float
    elapsed_seconds: float
    eta_seconds: float | None
    error: str | None
    model_path: str | None
    settings: dict[str, Any]


def training_defaults() -> dict[str, Any]:
    """Default training settings (from `TrainConfig`), without importing TensorFlow.

    Returns:
        Setting name to default value.
    """
    from pneumonet_core.train import TrainConfig

    return TrainConfig().to_dict()


def architectures() -> list[str]:
    """The architecture names the core can build."""
    from pneumonet_core import model

    return sorted(model.ARCHITECTURES)


def default_image_size(architecture: str) -> int:
    """The input size an architecture is designed for."""
    from pneumonet_core import model

    return int(model.default_image_size(architecture))


def job_summary() -> JobSummary | None:
    """The current (or last) training job, read from the job status file.

    Returns:
        The job, or None when no job has ever run here.
    """
    from pneumonet_core import jobs

    status = jobs.read_job_status()
    if status is None:
        return None
    settings = dict(status.config or {})
    return JobSummary(
        state=status.state,
        is_active=bool(status.is_active),
        job_id=status.job_id,
        run_id=status.run_id,
        run_name=str(settings.get("run_name") or status.run_id or status.job_id or "training"),
        epoch=int(status.epoch or 0),
        epochs=int(status.epochs or 0),
        batch=int(status.batch or 0),
        batches=int(status.batches or 0),
        progress=float(status.progress),
        elapsed_seconds=float(status.elapsed_s),
        eta_seconds=status.eta_s,
        error=status.error,
        model_path=status.model_path,
        settings=settings,
    )


@st.cache_data(show_spinner=False, max_entries=64)
def _mlflow_run_name(run_id: str) -> str | None:
    from pneumonet_core import tracking

    return tracking.run_info(run_id)["tags"].get("mlflow.runName")


def run_display_name(job: JobSummary) -> str:
    """The job's run name as MLflow shows it (falls back to the configured name or an id)."""
    if job.settings.get("run_name"):
        return str(job.settings["run_name"])
    if job.run_id:
        try:
            return _mlflow_run_name(job.run_id) or job.run_id[:12]
        except Exception:  # noqa: BLE001  (a name is only cosmetic)
            return job.run_id[:12]
    return f"job {job.job_id}"


def start_training(settings: dict[str, Any]) -> JobSummary:
    """Start a training run in the background process.

    Args:
        settings: `TrainConfig` fields (data_dir, architecture, epochs, image_size, batch_size,
            learning_rate, seed, augmentation as a dict, ...).

    Returns:
        The new job.

    Raises:
        ValueError: A setting is invalid (the message names it).
        pneumonet_core.jobs.JobAlreadyRunning: Another job is running.
    """
    from pneumonet_core import jobs
    from pneumonet_core.train import TrainConfig

    jobs.start_training_job(TrainConfig.from_dict(dict(settings)))
    return job_summary()


def stop_training() -> None:
    """Ask the running job to stop after its current batch (it keeps its best model)."""
    from pneumonet_core import jobs

    jobs.request_stop()


def job_log_tail(lines: int = 30) -> str:
    """The last lines of the job's output log (for a failed run's details)."""
    from pneumonet_core import jobs

    try:
        text = jobs.log_path().read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def settings_summary(settings: dict[str, Any]) -> str:
    """One line describing a run's main settings."""
    if not settings:
        return ""
    subset = settings.get("subset_per_class")
    parts = [
        f"{settings.get('architecture')}",
        f"{settings.get('epochs')} epochs",
        f"{settings.get('image_size') or 'default'} px",
        f"batch {settings.get('batch_size')}",
        f"learning rate {settings.get('learning_rate')}",
        f"seed {settings.get('seed')}",
        f"augmentation {'on' if (settings.get('augmentation') or {}).get('enabled') else 'off'}",
        f"data {settings.get('data_dir') or default_data_root()}",
    ]
    if subset:
        parts.append(f"{subset} images per class")
    return " · ".join(parts)


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


def promote_model(model_path: str | os.PathLike) -> Path:
    """Make a trained model the active model (copied atomically to the promoted location).

    Args:
        model_path: The run's `.keras` file.

    Returns:
        Where the active model now lives.

    Raises:
        pneumonet_core.modelio.ModelLoadError: The file is missing or not a loadable model.
        OSError: The promoted location cannot be written.
    """
    from pneumonet_core import modelio

    # Loads the model first (safe mode), then swaps it in with one os.replace.
    target = modelio.promote_model(model_path, config.promoted_model_path())
    _model_summary_cached.clear()
    return target


@st.cache_data(show_spinner=False, max_entries=32)
def _file_digest(path_text: str, signature: str) -> str:
    del signature  # part of the cache key only
    return hashlib.sha256(Path(path_text).read_bytes()).hexdigest()


def is_active_model(model_path: str | os.PathLike) -> bool:
    """Whether a model file is (a copy of) the one the dashboard currently uses."""
    active, candidate = active_model_path(), Path(model_path)
    if not (active.is_file() and candidate.is_file()):
        return False
    if active.stat().st_size != candidate.stat().st_size:
        return False
    return _file_digest(str(active), file_signature(active)) == _file_digest(
        str(candidate), file_signature(candidate)
    )


def promotion_is_overridden() -> bool:
    """Whether `PNEUMONET_MODEL` pins the active model, so a promotion has no effect."""
    return bool(os.environ.get("PNEUMONET_MODEL"))


# ----------------------------------------------------------------------------------------------
# Model loading and prediction (TensorFlow imported lazily, here only)
# ----------------------------------------------------------------------------------------------

DISPLAY_SIZE = 512
UPLOAD_CACHE_ENTRIES = 64
UPLOAD_CACHE_TTL = timedelta(minutes=30)
UPLOAD_TYPES = ["png", "jpg", "jpeg", "dcm", "dicom", "bmp", "tif", "tiff"]


@st.cache_resource(show_spinner="Loading the model…", max_entries=4)
def _load_model_cached(path_text: str, signature: str) -> Any:
    del signature  # part of the cache key only: a replaced file is loaded again
    from pneumonet_core.predict import Predictor

    return Predictor(Path(path_text))


def load_predictor(path: str | os.PathLike | None = None) -> Any:
    """The model wrapped for inference, loaded once per file version.

    Args:
        path: A `.keras` file; the active model when None.

    Returns:
        A `pneumonet_core.predict.Predictor`.

    Raises:
        FileNotFoundError: No model exists at that path.
    """
    path = Path(path) if path is not None else active_model_path()
    if not path.is_file():
        raise FileNotFoundError(f"no model at {path}; train one on the Train page and promote it")
    return _load_model_cached(str(path), file_signature(path))


@dataclasses.dataclass(frozen=True)
class ImagePrediction:
    """One uploaded image after inference.

    Attributes:
        file_name: The name of the uploaded file.
        probability: Predicted probability of PNEUMONIA, or None when the file failed.
        label: "PNEUMONIA" or "NORMAL" at the threshold, or None when the file failed.
        threshold: The operating threshold used.
        error: A one-line reason when the file could not be read, else None.
        image: The decoded image for display, float32 (H, W) in [0, 1], or None.
        heatmap: Grad-CAM at display size, float32 (H, W) in [0, 1], or None.
        is_dicom: Whether the file is DICOM.
        ood: True when the image is not a chest X-ray or is outside the model's validated
            use: the probability is shown but must not be relied on.
        ood_reason: Why, for the clinician (None when `ood` is False); it starts with
            "not a chest X-ray: " or "outside validated use: " (`ood.reason_kind`).
    """

    file_name: str
    probability: float | None
    label: str | None
    threshold: float
    error: str | None
    image: np.ndarray | None
    heatmap: np.ndarray | None
    is_dicom: bool
    ood: bool = False
    ood_reason: str | None = None


def _resize_for_display(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    resized = Image.fromarray(np.asarray(image, dtype=np.float32), mode="F").resize(
        size, Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def _display_image(image: np.ndarray) -> np.ndarray:
    height, width = image.shape
    scale = min(1.0, DISPLAY_SIZE / max(height, width))
    if scale == 1.0:
        return image.astype(np.float32)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return _resize_for_display(image, size)


def _failed_prediction(file_name: str, threshold: float, reason: str) -> ImagePrediction:
    return ImagePrediction(file_name, None, None, threshold, reason, None, None, False)


@st.cache_resource(show_spinner=False, max_entries=4)
def _grad_cam_cached(path_text: str, signature: str) -> Any:
    from pneumonet_core import explain

    predictor = _load_model_cached(path_text, signature)
    return explain.GradCam(predictor.model, predictor.metadata.gradcam_layer)


def grad_cam(model_path: str | os.PathLike, model_input: np.ndarray) -> np.ndarray:
    """Grad-CAM heatmap for one model input (the gradient model is built once per model).

    Args:
        model_path: The `.keras` file.
        model_input: One preprocessed image (S, S, 1).

    Returns:
        float32 (S, S) in [0, 1].
    """
    path = Path(model_path)
    return _grad_cam_cached(str(path), file_signature(path))(model_input)


def _named_buffer(content: bytes, file_name: str) -> io.BytesIO:
    """An in-memory file carrying its name, so the core's messages name the upload."""
    buffer = io.BytesIO(content)
    buffer.name = file_name
    return buffer


# Bounded: each entry holds a display image and a heatmap (up to 512 x 512, a few MB), and old
# uploads leave memory after UPLOAD_CACHE_TTL even when the cache is not full.
@st.cache_data(show_spinner=False, max_entries=UPLOAD_CACHE_ENTRIES, ttl=UPLOAD_CACHE_TTL)
def _predict_bytes_cached(
    file_name: str, content: bytes, model_path: str, signature: str
) -> ImagePrediction:
    from pneumonet_core import imaging, preprocessing

    predictor = _load_model_cached(model_path, signature)
    threshold = float(predictor.threshold)
    try:
        image, info = imaging.read_image_with_info(_named_buffer(content, file_name))
    except imaging.ImageReadError as error:
        return _failed_prediction(file_name, threshold, describe_error(error))
    model_input = preprocessing.resize_image(image, predictor.image_size)
    result = predictor.assess(model_input, info, file_name)
    heatmap = _grad_cam_cached(model_path, signature)(model_input)
    shown = _display_image(image)
    return ImagePrediction(
        file_name=file_name,
        probability=result.probability,
        label=result.label,
        threshold=threshold,
        error=None,
        image=shown,
        heatmap=_resize_for_display(heatmap, (shown.shape[1], shown.shape[0])),
        is_dicom=info.format == "DICOM",
        ood=result.ood,
        ood_reason=result.ood_reason,
    )


def predict_upload(
    file_name: str, content: bytes, model_path: str | None = None
) -> ImagePrediction:
    """Predict one uploaded image (bytes only; nothing is written to disk).

    Args:
        file_name: The uploaded file's name, for display and error messages.
        content: The file's bytes (PNG, JPEG, DICOM...).
        model_path: A `.keras` file; the active model when None.

    Returns:
        The prediction with its image and Grad-CAM heatmap, or the reason it failed.
    """
    path = Path(model_path) if model_path else active_model_path()
    load_predictor(path)  # a missing model is a page-level error, not a per-file one
    return _predict_bytes_cached(file_name, content, str(path), file_signature(path))


def overlay(prediction: ImagePrediction, opacity: float) -> np.ndarray:
    """The image with its Grad-CAM heatmap blended on top.

    Args:
        prediction: A successful prediction.
        opacity: Heatmap opacity in [0, 1].

    Returns:
        uint8 RGB array (H, W, 3).
    """
    return overlay_image(prediction.image, prediction.heatmap, opacity)


def dicom_header(content: bytes) -> dict[str, str]:
    """DICOM header fields, patient fields included (call only when the user asks).

    Args:
        content: The DICOM file's bytes.

    Returns:
        Field name to value.
    """
    from pneumonet_core import imaging

    return imaging.read_dicom_header(content, include_patient_fields=True)


TABLE_COLUMNS = ("file", "probability", "label", "threshold", "warning", "error")


def predictions_table(predictions: list[ImagePrediction]) -> pd.DataFrame:
    """The batch results, most likely pneumonia first.

    Args:
        predictions: Results of `predict_upload`.

    Returns:
        One row per file: file, probability, label, threshold, warning (why the probability
        is unreliable, else empty), error.
    """
    rows = [
        {
            "file": item.file_name,
            "probability": item.probability,
            "label": item.label or "unreadable",
            "threshold": item.threshold,
            "warning": item.ood_reason or "",
            "error": item.error or "",
        }
        for item in predictions
    ]
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return table.sort_values("probability", ascending=False, na_position="last").reset_index(
        drop=True
    )


def table_to_csv(table: pd.DataFrame) -> bytes:
    """A table as UTF-8 CSV bytes for a download button."""
    return table.to_csv(index=False).encode("utf-8")


# ----------------------------------------------------------------------------------------------
# Runs (MLflow imported lazily, through pneumonet_core.tracking)
# ----------------------------------------------------------------------------------------------


def tracking_uri() -> str:
    """The MLflow tracking URI the runs are recorded in."""
    return config.tracking_uri()


def _tracking_store_exists() -> bool:
    uri = config.tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).is_file()
    return True


def _run_name(row: pd.Series) -> str:
    name = row.get("tags.mlflow.runName")
    return str(name) if isinstance(name, str) and name else str(row["run_id"])[:8]


def runs_table() -> pd.DataFrame:
    """Every recorded run, newest first, ready to show.

    Returns:
        Columns `run, status, started, duration (s)`, then `param: ...` and `metric: ...`
        columns, and `run_id`. Empty when nothing has been recorded yet.
    """
    if not _tracking_store_exists():
        return pd.DataFrame()
    from pneumonet_core import tracking

    runs = tracking.list_runs()
    if runs.empty:
        return pd.DataFrame()
    table = pd.DataFrame(
        {
            "run": runs.apply(_run_name, axis=1),
            "status": runs.apply(_run_status, axis=1),
            "started": pd.to_datetime(runs["start_time"]).dt.strftime("%Y-%m-%d %H:%M"),
            "duration (s)": runs.get("duration_s", pd.Series(dtype=float)).round(0),
        }
    )
    metric_columns = _ordered(runs.columns, "metrics.", KEY_RUN_METRICS)
    param_columns = _ordered(runs.columns, "params.", KEY_RUN_PARAMS)
    for column in metric_columns:
        table[f"metric: {column.removeprefix('metrics.')}"] = runs[column].round(4)
    for column in param_columns:
        table[f"param: {column.removeprefix('params.')}"] = runs[column]
    error_column = "tags.pneumonet.error"
    if error_column in runs.columns:
        table["error"] = runs[error_column].fillna("")
    table["run_id"] = runs["run_id"]
    return table.reset_index(drop=True)


KEY_RUN_METRICS = (
    "final_val_roc_auc",
    "final_val_sensitivity",
    "final_val_specificity",
    "final_val_accuracy",
    "final_val_threshold",
    "val_auc",
    "val_loss",
)
KEY_RUN_PARAMS = (
    "architecture",
    "epochs",
    "image_size",
    "batch_size",
    "learning_rate",
    "seed",
    "augmentation.enabled",
    "train_images",
    "val_images",
)


def _ordered(columns: pd.Index, prefix: str, first: tuple[str, ...]) -> list[str]:
    """Columns with a prefix: the key ones in the given order, then the rest alphabetically."""
    present = [column for column in columns if column.startswith(prefix)]
    key = [prefix + name for name in first if prefix + name in present]
    return key + sorted(set(present) - set(key))


def _run_status(row: pd.Series) -> str:
    if str(row.get("tags.pneumonet.stopped_by_user", "")).lower() == "true":
        return "STOPPED"
    return str(row["status"])


def run_history(run_id: str) -> pd.DataFrame:
    """Every logged metric value of a run: columns `key, step, value, timestamp`.

    Args:
        run_id: The MLflow run id.

    Returns:
        The history (empty when nothing is recorded yet).
    """
    from pneumonet_core import tracking

    return tracking.metric_history(run_id)


# ----------------------------------------------------------------------------------------------
# Evaluation (predictions computed once per model and image set; metrics recomputed freely)
# ----------------------------------------------------------------------------------------------

VALIDATION_SPLIT = "validation"
FOLDER_SPLIT = "folder"


@dataclasses.dataclass(frozen=True)
class EvaluationSet:
    """Labelled images to evaluate on.

    Attributes:
        description: What the set is, in words.
        paths: Image files.
        labels: 0 (NORMAL) or 1 (PNEUMONIA) per file.
    """

    description: str
    paths: tuple[str, ...]
    labels: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class ModelScores:
    """One model's predictions on an evaluation set.

    Attributes:
        model_path: The model evaluated.
        name: Its display name.
        threshold: Its own operating threshold.
        paths: The images that could be read.
        labels: Their true labels (0/1).
        scores: Predicted PNEUMONIA probabilities.
        skipped: `(path, reason)` for unreadable images.
    """

    model_path: str
    name: str
    threshold: float
    paths: tuple[str, ...]
    labels: np.ndarray
    scores: np.ndarray
    skipped: tuple[tuple[str, str], ...]


def evaluation_models() -> dict[str, str]:
    """Models that can be evaluated: the active one and every run that saved a model.

    Returns:
        Display label to `.keras` path, the active model first.
    """
    choices: dict[str, str] = {}
    active = active_model_path()
    if active.is_file():
        try:
            summary = model_summary(active)
            choices[f"Active model: {summary.name} ({summary.source})"] = str(active)
        except Exception:  # noqa: BLE001  (an unreadable model is left out; Home reports it)
            pass
    shipped = config.shipped_model_path()
    if shipped.is_file() and shipped != active:
        choices["Shipped model"] = str(shipped)
    for label, path in _run_models().items():
        if path not in choices.values():
            choices[label] = path
    return choices


def _run_models() -> dict[str, str]:
    if not _tracking_store_exists():
        return {}
    from pneumonet_core import tracking

    runs = tracking.list_runs()
    column = "tags.pneumonet.model_path"
    if runs.empty or column not in runs.columns:
        return {}
    models = {}
    for _, row in runs.iterrows():
        path = row.get(column)
        if isinstance(path, str) and Path(path).is_file():
            started = pd.to_datetime(row["start_time"]).strftime("%Y-%m-%d %H:%M")
            models[f"Run {_run_name(row)} ({row['status'].lower()}, {started})"] = path
    return models


def validation_split_settings(model_path: str) -> dict[str, Any]:
    """How a model's patient-grouped validation split was carved (from its training settings).

    Args:
        model_path: The model whose split to reproduce.

    Returns:
        `data_dir`, `val_fraction`, `seed` and `subset_per_class` (defaults where unknown).
    """
    defaults = training_defaults()
    summary = model_summary(model_path)
    training = summary.details.get("training") if summary else None
    training = training if isinstance(training, dict) else {}
    return {
        "data_dir": training.get("data_dir") or default_data_root(),
        "val_fraction": float(training.get("val_fraction") or defaults["val_fraction"]),
        "seed": int(
            training.get("seed", defaults["seed"])
            if training.get("split_seed") is None
            else training["split_seed"]
        ),
        "subset_per_class": training.get("subset_per_class"),
    }


def dataset_splits(data_root: str) -> list[str]:
    """Folders under the dataset root that can be evaluated as they are (e.g. val, test)."""
    root = Path(data_root)
    return [name for name in ("val", "test") if (root / name / "NORMAL").is_dir()]


@st.cache_data(show_spinner="Finding the images…", max_entries=16)
def evaluation_set(
    kind: str,
    folder: str,
    *,
    val_fraction: float = 0.2,
    seed: int = 42,
    subset_per_class: int | None = None,
    max_per_class: int | None = None,
) -> EvaluationSet:
    """The labelled images of a split.

    Args:
        kind: `VALIDATION_SPLIT` (patient-grouped split carved from `<folder>/train`) or
            `FOLDER_SPLIT` (every image of a folder holding NORMAL/ and PNEUMONIA/).
        folder: The dataset root (validation) or the folder to evaluate.
        val_fraction: Share of patients held out (validation only).
        seed: Split seed (validation only).
        subset_per_class: The training subset the split was carved from, if any.
        max_per_class: Keep at most this many images per class (a quicker look).

    Returns:
        The images and their labels.

    Raises:
        ValueError: The folder has no usable images (the message says why).
    """
    from pneumonet_core import data

    if kind == VALIDATION_SPLIT:
        _, frame = data.training_split(
            folder, val_fraction=val_fraction, seed=seed, subset_per_class=subset_per_class
        )
        description = (
            f"validation split: {val_fraction:.0%} of the patients in {Path(folder) / 'train'} "
            f"(patient-grouped, seed {seed})"
        )
    else:
        scan = data.scan_dataset(folder)
        frame = scan.frame
        description = f"all images in {folder}"
        if frame.empty:
            problems = "; ".join(scan.problems) or "empty"
            raise ValueError(f"no images found in {folder}: {problems}")
    if max_per_class:
        frame = data.stratified_subset(frame, per_class=int(max_per_class), seed=0)
        description += f", at most {max_per_class} per class"
    return EvaluationSet(
        description=description,
        paths=tuple(frame["path"].astype(str)),
        labels=tuple(int(value) for value in frame["label_index"]),
    )


@st.cache_data(show_spinner=False, max_entries=16)
def _scores_cached(
    model_path: str, signature: str, paths: tuple[str, ...], labels: tuple[int, ...]
) -> ModelScores:
    from pneumonet_core import data

    predictor = _load_model_cached(model_path, signature)
    loaded = data.load_images(list(paths), predictor.image_size, on_error="skip")
    scores = predictor.predict_arrays(loaded.images)
    kept = np.asarray(loaded.kept, dtype=bool)
    summary = model_summary(model_path)
    return ModelScores(
        model_path=model_path,
        name=summary.name if summary else Path(model_path).stem,
        threshold=float(predictor.threshold),
        paths=tuple(np.asarray(paths, dtype=object)[kept]),
        labels=np.asarray(labels, dtype=int)[kept],
        scores=np.asarray(scores, dtype=float),
        skipped=tuple((str(path), str(reason)) for path, reason in loaded.errors),
    )


def model_scores(
    model_path: str, evaluation: EvaluationSet, name: str | None = None
) -> ModelScores:
    """Predict every image of a set with a model, once (cached per model file version).

    Args:
        model_path: The `.keras` file.
        evaluation: The images to predict.
        name: Display name (default: the name in the model's metadata).

    Returns:
        The scores; unreadable images are left out and listed in `skipped`.
    """
    load_predictor(model_path)
    scores = _scores_cached(
        model_path, file_signature(model_path), evaluation.paths, evaluation.labels
    )
    return dataclasses.replace(scores, name=name) if name else scores


@st.cache_data(show_spinner=False, max_entries=8)
def _shortcut_audit_cached(
    model_path: str, signature: str, paths: tuple[str, ...], labels: tuple[int, ...]
) -> dict[str, Any]:
    from pneumonet_core import data, shortcuts

    predictor = _load_model_cached(model_path, signature)
    loaded = data.load_images(list(paths), predictor.image_size, on_error="skip")
    kept_labels = np.asarray(labels, dtype=int)[np.asarray(loaded.kept, dtype=bool)]
    return shortcuts.audit(predictor.model, loaded.images, kept_labels)


def shortcut_audit(model_path: str, evaluation: EvaluationSet) -> dict[str, Any]:
    """The shortcut audit of a model on a labelled set (cached per model file version).

    Returns:
        `pneumonet_core.shortcuts.audit`'s figures: ROC-AUC with the lungs hidden, with the
        outside hidden, and the Grad-CAM share inside the lungs.

    Raises:
        ValueError: The set lacks one of the classes.
    """
    load_predictor(model_path)
    return _shortcut_audit_cached(
        model_path, file_signature(model_path), evaluation.paths, evaluation.labels
    )


def shortcut_targets() -> dict[str, float]:
    """The audit's targets (lungs-hidden AUC at most, outside-hidden largest drop)."""
    from pneumonet_core.shortcuts import TARGETS

    return dict(TARGETS)


def short_model_name(label: str) -> str:
    """A chart-sized name from a model choice label ("Run calm-owl-12 (finished, …)")."""
    return label.split(" (", 1)[0].removeprefix("Active model: ")


def metrics_at(scores: ModelScores, threshold: float) -> dict[str, Any]:
    """Headline metrics at a threshold (`pneumonet_core.evaluate.binary_metrics`)."""
    from pneumonet_core import evaluate

    return evaluate.binary_metrics(scores.labels, scores.scores, threshold=threshold)


def classification_report(scores: ModelScores, threshold: float) -> pd.DataFrame:
    """Per-class precision, recall, F1 and support as a table."""
    from pneumonet_core import evaluate

    report = evaluate.classification_report_dict(scores.labels, scores.scores, threshold=threshold)
    rows = {
        key: value
        for key, value in report.items()
        if isinstance(value, dict) and key in (*class_names(), "macro avg", "weighted avg")
    }
    table = pd.DataFrame(rows).T[["precision", "recall", "f1-score", "support"]]
    table["support"] = table["support"].astype(int)
    table.index.name = "class"
    return table.round(3)


def roc_curve(scores: ModelScores, threshold: float) -> dict[str, Any]:
    """ROC points, AUC and the operating point at a threshold, for `charts.roc_curves`."""
    from pneumonet_core import evaluate

    points = evaluate.roc_curve_points(scores.labels, scores.scores)
    metrics = metrics_at(scores, threshold)
    return {
        "name": scores.name,
        "fpr": points["fpr"],
        "tpr": points["tpr"],
        "auc": metrics["roc_auc"],
        "operating_point": (1 - metrics["specificity"], metrics["sensitivity"], threshold),
    }


def pr_curve(scores: ModelScores, threshold: float) -> dict[str, Any]:
    """Precision-recall points, average precision and the operating point."""
    from pneumonet_core import evaluate

    points = evaluate.pr_curve_points(scores.labels, scores.scores)
    metrics = metrics_at(scores, threshold)
    precision = metrics["precision"] if metrics["precision"] == metrics["precision"] else 1.0
    return {
        "name": scores.name,
        "recall": points["recall"],
        "precision": points["precision"],
        "auc": metrics["pr_auc"],
        "operating_point": (metrics["sensitivity"], precision, threshold),
    }


def calibration(scores: ModelScores, n_bins: int = 10) -> tuple[dict[str, np.ndarray], float]:
    """Reliability-diagram bins and the expected calibration error."""
    from pneumonet_core import evaluate

    bins = evaluate.calibration_bins(scores.labels, scores.scores, n_bins=n_bins)
    ece = evaluate.expected_calibration_error(scores.labels, scores.scores, n_bins=n_bins)
    return bins, ece


def suggested_thresholds(scores: ModelScores) -> dict[str, float]:
    """Useful thresholds: the model's own, Youden's J, and 95% sensitivity."""
    from pneumonet_core import evaluate

    suggestions = {"model's threshold": scores.threshold}
    if len(set(scores.labels.tolist())) == 2:
        suggestions["Youden's J"] = evaluate.youden_threshold(scores.labels, scores.scores)
        suggestions["95% sensitivity"] = evaluate.threshold_for_sensitivity(
            scores.labels, scores.scores, min_sensitivity=0.95
        )
    return {name: float(np.clip(value, 0.0, 1.0)) for name, value in suggestions.items()}


def comparison_table(all_scores: list[ModelScores]) -> pd.DataFrame:
    """Side-by-side metrics of several models, each at its own threshold."""
    rows = []
    for scores in all_scores:
        metrics = metrics_at(scores, scores.threshold)
        rows.append(
            {
                "model": scores.name,
                "threshold": scores.threshold,
                "ROC AUC": metrics["roc_auc"],
                "PR AUC": metrics["pr_auc"],
                "sensitivity": metrics["sensitivity"],
                "specificity": metrics["specificity"],
                "accuracy": metrics["accuracy"],
                "F1": metrics["f1"],
                "images": metrics["n"],
            }
        )
    return pd.DataFrame(rows).round(3)


@dataclasses.dataclass(frozen=True)
class ExplainedImage:
    """A misclassified image with its Grad-CAM.

    Attributes:
        path: The image file.
        probability: Predicted PNEUMONIA probability.
        true_label: The true class name.
        image: Display image (H, W) in [0, 1].
        heatmap: Grad-CAM at display size (H, W) in [0, 1].
    """

    path: str
    probability: float
    true_label: str
    image: np.ndarray
    heatmap: np.ndarray


@st.cache_data(show_spinner=False, max_entries=UPLOAD_CACHE_ENTRIES, ttl=UPLOAD_CACHE_TTL)
def _explain_file_cached(model_path: str, signature: str, image_path: str) -> tuple:
    from pneumonet_core import imaging, preprocessing

    predictor = _load_model_cached(model_path, signature)
    image = imaging.read_image(image_path)
    model_input = preprocessing.resize_image(image, predictor.image_size)
    heatmap = _grad_cam_cached(model_path, signature)(model_input)
    shown = _display_image(image)
    return shown, _resize_for_display(heatmap, (shown.shape[1], shown.shape[0]))


def misclassified(
    scores: ModelScores, threshold: float, *, kind: str, limit: int = 6
) -> list[ExplainedImage]:
    """The most confidently wrong images of one kind, each with its Grad-CAM.

    Args:
        scores: A model's predictions.
        threshold: The operating threshold.
        kind: "FP" (NORMAL called PNEUMONIA) or "FN" (PNEUMONIA called NORMAL).
        limit: At most this many images.

    Returns:
        The images, most confident mistakes first.
    """
    predicted = scores.scores >= threshold
    if kind == "FP":
        wrong = np.flatnonzero((scores.labels == 0) & predicted)
        order = wrong[np.argsort(-scores.scores[wrong])]
    else:
        wrong = np.flatnonzero((scores.labels == 1) & ~predicted)
        order = wrong[np.argsort(scores.scores[wrong])]
    signature = file_signature(scores.model_path)
    explained = []
    for index in order[:limit]:
        image, heatmap = _explain_file_cached(scores.model_path, signature, scores.paths[index])
        explained.append(
            ExplainedImage(
                path=scores.paths[index],
                probability=float(scores.scores[index]),
                true_label=class_names()[int(scores.labels[index])],
                image=image,
                heatmap=heatmap,
            )
        )
    return explained


def overlay_image(image: np.ndarray, heatmap: np.ndarray, opacity: float) -> np.ndarray:
    """Blend a heatmap over an image (`pneumonet_core.explain.overlay_heatmap`)."""
    from pneumonet_core import explain

    return explain.overlay_heatmap(image, heatmap, opacity)


def model_run_id(model_path: str) -> str | None:
    """The MLflow run that trained a model, if recorded in its metadata."""
    summary = model_summary(model_path)
    run_id = summary.details.get("run_id") if summary else None
    return str(run_id) if run_id else None


def metrics_table(metrics: dict[str, Any]) -> pd.DataFrame:
    """Headline metrics as a one-column table (for the report)."""
    rows = {
        key: value
        for key, value in metrics.items()
        if isinstance(value, int | float) and not isinstance(value, bool)
    }
    rows.update({key.upper(): value for key, value in metrics["confusion_matrix"].items()})
    return pd.DataFrame({"value": rows}).rename_axis("metric")


def run_histories(model_paths: list[str]) -> dict[str, pd.DataFrame]:
    """Training curves of the models that came from recorded runs.

    Args:
        model_paths: The models compared.

    Returns:
        Model name to its run's metric history (models without a run are left out).
    """
    if not _tracking_store_exists():
        return {}
    histories = {}
    for path in model_paths:
        run_id = model_run_id(path)
        if not run_id:
            continue
        try:
            history = run_history(run_id)
        except Exception:  # noqa: BLE001  (a run deleted from the store has no curves)
            continue
        summary = model_summary(path)
        histories[f"{summary.name} ({run_id[:8]})"] = history
    return histories
