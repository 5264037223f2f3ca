"""Inference on uploaded X-rays: the prediction, its Grad-CAM on request, the batch table.

Uploads stay in memory (bytes only; nothing is written to disk). A prediction is cached per
file name, bytes, model file version and threshold, for a bounded number of uploads and a
bounded time. Grad-CAM runs only for an image whose heatmap is shown (`heatmap`), and is
cached the same way. It carries the SHA-256 of the upload's bytes, which the audit trail records
(`audit_log.record_prediction`) instead of the file's name.
"""

from __future__ import annotations

import dataclasses
import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import cache, models, text
from pneumonet_core import imaging
from pneumonet_core.governance import audit
from pneumonet_core.inference import SIMPLE_CHECKS_SUMMARY, ood_checks

SIMPLE_OOD_CHECKS = SIMPLE_CHECKS_SUMMARY  # what is flagged without feature statistics
UPLOAD_CACHE_ENTRIES = 64
UPLOAD_CACHE_TTL = timedelta(minutes=30)
UPLOAD_TYPES = list(imaging.UPLOAD_TYPES)  # every suffix the core decodes
TABLE_COLUMNS = ("file", "probability", "label", "threshold", "warning", "error")


@dataclasses.dataclass(frozen=True)
class ImagePrediction:
    """One uploaded image after inference.

    Attributes:
        file_name: The name of the uploaded file.
        probability: Predicted probability of PNEUMONIA, or None when the file failed.
        label: "PNEUMONIA" or "NORMAL" at the threshold; None when the file failed and when
            the image is not a chest X-ray (`is_not_a_chest_xray`: no label anywhere).
        threshold: The operating threshold used.
        error: A one-line reason when the file could not be read, else None.
        image: The decoded image for display, float32 (H, W) in [0, 1] (longer side at most
            `predict.DISPLAY_SIZE`), or None.
        model_input: The model's input, float32 (S, S, 1), for Grad-CAM on request
            (`heatmap`), or None.
        is_dicom: Whether the file is DICOM.
        ood: True when the image is not a chest X-ray or is outside the model's validated
            use: the probability is shown but must not be relied on.
        ood_reason: Why, for the clinician (None when `ood` is False); it starts with
            "not a chest X-ray: " or "outside validated use: " (`ood.reason_kind`).
        image_sha256: The SHA-256 of the uploaded bytes (64 hexadecimal characters).
        frame_note: "frame 3 of 5 decoded" for a multi-frame file (only one frame is decoded),
            else None.
    """

    file_name: str
    probability: float | None
    label: str | None
    threshold: float
    error: str | None
    image: np.ndarray | None
    model_input: np.ndarray | None
    is_dicom: bool
    ood: bool = False
    ood_reason: str | None = None
    image_sha256: str = ""
    frame_note: str | None = None
    model_path: str = ""  # the model file and its version (`cache.file_signature`) it came
    model_signature: str = ""  # from, so that its Grad-CAM comes from the same model

    @property
    def is_not_a_chest_xray(self) -> bool:
        """Whether the guard found the image not to be a chest X-ray: no result, no label."""
        return bool(self.ood_reason) and self.ood_reason.startswith(
            f"{ood_checks.NOT_A_CHEST_XRAY}: "
        )

    @property
    def warning_kind(self) -> str:
        """ "not a chest X-ray", "outside validated use", or "" when not flagged."""
        if not self.ood_reason:
            return ""
        if self.is_not_a_chest_xray:
            return ood_checks.NOT_A_CHEST_XRAY
        return ood_checks.OUTSIDE_VALIDATED_USE


UPLOAD_ROUND = "predict_upload_round"  # session state: bumped to empty the uploader


def uploader_key() -> str:
    """The Predict uploader's widget key; a new key after `clear_uploads` empties it."""
    return f"predict_uploads_{st.session_state.get(UPLOAD_ROUND, 0)}"


def clear_uploads() -> None:
    """Remove every uploaded image (and so its result) from this session's Predict page.

    Streamlit's multi-file uploader adds each new batch to the files already there; this lets
    a clinician start again with the next patient's images without removing files one by one.
    """
    st.session_state[UPLOAD_ROUND] = st.session_state.get(UPLOAD_ROUND, 0) + 1


def _failed_prediction(
    file_name: str, threshold: float, reason: str, image_sha256: str
) -> ImagePrediction:
    return ImagePrediction(
        file_name, None, None, threshold, reason, None, None, False, image_sha256=image_sha256
    )


def _named_buffer(content: bytes, file_name: str) -> io.BytesIO:
    """An in-memory file carrying its name, so the core's messages name the upload."""
    buffer = io.BytesIO(content)
    buffer.name = file_name
    return buffer


# Bounded: each entry holds a display image (up to 512 x 512, 1 MB), and old uploads leave
# memory after UPLOAD_CACHE_TTL even when the cache is not full.
@st.cache_data(show_spinner=False, max_entries=UPLOAD_CACHE_ENTRIES, ttl=UPLOAD_CACHE_TTL)
def _predict_bytes_cached(
    file_name: str, content: bytes, model_path: str, signature: str, threshold: float | None
) -> ImagePrediction:
    predictor = cache.cached_predictor(model_path, signature)
    if threshold is not None:  # the shared model at a site operating point (no reload)
        predictor = predictor.with_threshold(threshold)
    image_sha256 = audit.sha256_of_bytes(content)
    try:
        buffer = _named_buffer(content, file_name)
        explained = predictor.explain(buffer, name=file_name, with_heatmap=False)
    except imaging.ImageReadError as error:
        reason = text.describe_error(error)
        return _failed_prediction(file_name, predictor.threshold, reason, image_sha256)
    result = explained.prediction
    return ImagePrediction(
        file_name=file_name,
        probability=result.probability,
        label=result.label,
        threshold=result.threshold,
        error=None,
        image=explained.image,
        model_input=explained.model_input,
        is_dicom=explained.info.format == "DICOM",
        ood=result.ood,
        ood_reason=result.ood_reason,
        image_sha256=image_sha256,
        frame_note=explained.info.frame_note,
        model_path=model_path,
        model_signature=signature,
    )


# Keyed by the model file version and the upload's bytes (its SHA-256); the model input, made
# from those bytes, is passed unhashed (the leading underscore).
@st.cache_data(show_spinner=False, max_entries=UPLOAD_CACHE_ENTRIES, ttl=UPLOAD_CACHE_TTL)
def _heatmap_cached(
    model_path: str, signature: str, image_sha256: str, shape: tuple, _model_input: np.ndarray
) -> np.ndarray:
    predictor = cache.cached_predictor(model_path, signature)
    return imaging.resize_array(predictor.grad_cam(_model_input), shape)


def heatmap(prediction: ImagePrediction) -> np.ndarray:
    """The Grad-CAM of a successful prediction at its display image's size, computed on the
    first call (only for an image whose heatmap is shown) and cached.

    Returns:
        float32 (H, W) in [0, 1], higher where the PNEUMONIA score rose most.
    """
    return _heatmap_cached(
        prediction.model_path,
        prediction.model_signature,
        prediction.image_sha256,
        tuple(prediction.image.shape),
        prediction.model_input,
    )


def predict_upload(
    file_name: str,
    content: bytes,
    model_path: str | None = None,
    threshold: float | None = None,
) -> ImagePrediction:
    """Predict one uploaded image (bytes only; nothing is written to disk).

    Args:
        file_name: The uploaded file's name, for display and error messages.
        content: The file's bytes (PNG, JPEG, DICOM...).
        model_path: A `.keras` file; the active model (`models.resolved_model`) when None.
        threshold: The operating threshold, strictly between 0 and 1; None for the model
            file's own, or with no `model_path`, the active version's site operating point.

    Returns:
        The prediction with its display image (Grad-CAM: `heatmap`), or the reason it failed.
    """
    if not model_path:
        resolved = models.resolved_model()
        model_path = resolved.path
        threshold = resolved.threshold if threshold is None else threshold
    path = Path(model_path)
    cache.load_predictor(path)  # a missing model is a page-level error, not a per-file one
    signature = cache.file_signature(path)
    return _predict_bytes_cached(file_name, content, str(path), signature, threshold)


def overlay_image(image: np.ndarray, heatmap: np.ndarray, opacity: float) -> np.ndarray:
    """Blend a heatmap over an image (`pneumonet_core.inference.explain.overlay_heatmap`).

    Args:
        image: float32 (H, W) in [0, 1].
        heatmap: float32 (H, W) in [0, 1].
        opacity: Heatmap opacity in [0, 1].

    Returns:
        uint8 RGB array (H, W, 3).
    """
    from pneumonet_core.inference import explain

    return explain.overlay_heatmap(image, heatmap, opacity)


def overlay(prediction: ImagePrediction, opacity: float) -> np.ndarray:
    """The image with its Grad-CAM heatmap blended on top.

    Args:
        prediction: A successful prediction.
        opacity: Heatmap opacity in [0, 1].

    Returns:
        uint8 RGB array (H, W, 3).
    """
    return overlay_image(prediction.image, heatmap(prediction), opacity)


def dicom_header(content: bytes) -> dict[str, str]:
    """DICOM header fields, patient fields included (call only when the user asks).

    Args:
        content: The DICOM file's bytes.

    Returns:
        Field name to value.
    """
    from pneumonet_core import imaging

    return imaging.read_dicom_header(content, include_patient_fields=True)


def predictions_table(predictions: list[ImagePrediction]) -> pd.DataFrame:
    """The batch results, most likely pneumonia first.

    Args:
        predictions: Results of `predict_upload`.

    Returns:
        One row per file: file, probability, label (empty for an image that is not a chest
        X-ray, "unreadable" for a file that failed), threshold (as shown: two decimals),
        warning (why the probability is unreliable, in full, else empty), error.
    """
    rows = [
        {
            "file": item.file_name,
            "probability": item.probability,
            "label": "unreadable" if item.error else (item.label or ""),
            "threshold": text.rounded_threshold(item.threshold),
            "warning": item.ood_reason or "",
            "error": item.error or "",
        }
        for item in predictions
    ]
    table = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    return table.sort_values("probability", ascending=False, na_position="last").reset_index(
        drop=True
    )


def shown_table(table: pd.DataFrame) -> pd.DataFrame:
    """The batch table as the page shows it: the warning's kind only (the full reasons are
    listed under the table, so none is cut off), and no warning or error column when empty.

    Args:
        table: From `predictions_table`.
    """
    shown = table.copy()
    shown["warning"] = [reason.split(": ", 1)[0] if reason else "" for reason in table["warning"]]
    empty = [name for name in ("warning", "error") if not shown[name].astype(bool).any()]
    return shown.drop(columns=empty)
