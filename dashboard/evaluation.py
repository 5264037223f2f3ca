"""Evaluating a model on labelled images: the image sets, one model's scores on a set, the
shortcut audit, the misclassified gallery and the compared models' training curves.

Predictions are computed once per model file version and image set (cached); metrics at a
threshold are recomputed freely from them (`dashboard.metrics`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import cache, inference, models, runs, text

VALIDATION_SPLIT = "validation"
FOLDER_SPLIT = "folder"


@dataclasses.dataclass(frozen=True)
class EvaluationSet:
    """Labelled images to evaluate on.

    Attributes:
        description: What the set is, in words.
        paths: Image files.
        labels: 0 (NORMAL) or 1 (PNEUMONIA) per file.
        kind: `VALIDATION_SPLIT` or `FOLDER_SPLIT`.
        folder: The dataset root (validation) or the folder evaluated.
        complete: Whether it holds every image of the folder (no per-class limit), as a site
            operating point's evidence must.
    """

    description: str
    paths: tuple[str, ...]
    labels: tuple[int, ...]
    kind: str = FOLDER_SPLIT
    folder: str = ""
    complete: bool = True


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


def validation_split_settings(model_path: str, data_root: str) -> dict[str, Any]:
    """How a model's patient-grouped validation split was carved, applied to the configured
    data root (never the folder recorded in the model, which may be another machine's).

    Args:
        model_path: The model whose split to reproduce.
        data_root: The configured dataset root (`dataset.default_data_root()`).

    Returns:
        `data_dir` (= `data_root`), `val_fraction`, `seed` and `subset_per_class`, as the core
        reads them from the model's metadata (`inference.ood.training_split_settings`; its
        defaults when the file does not exist or recorded none).

    Raises:
        ModelLoadError: The model file exists but its metadata cannot be read.
    """
    from pneumonet_core.inference import ood
    from pneumonet_core.models import read_metadata

    metadata = read_metadata(model_path) if Path(model_path).is_file() else None
    return ood.training_split_settings(metadata, data_dir=data_root)


@st.cache_data(show_spinner="Checking the split against the model's training data…", ttl=600)
def training_data_difference(model_path: str, data_root: str) -> str | None:
    """How the split carved from `data_root` differs from the model's training data, or None.

    The model records the SHA-256 of its training and validation files
    (`training_data_fingerprint`); the same split of the configured root must give it.

    Returns:
        None when the fingerprints match; otherwise a one-line note (also when the model
        recorded no fingerprint).
    """
    from pneumonet_core.data import data_fingerprint
    from pneumonet_core.inference import ood
    from pneumonet_core.models import read_metadata

    metadata = read_metadata(model_path) if Path(model_path).is_file() else None
    recorded = getattr(metadata, "training_data_fingerprint", "")
    if not recorded:
        return "the model recorded no training-data fingerprint, so the split cannot be checked"
    train_frame, val_frame = ood.model_training_split(metadata, data_root)
    found = data_fingerprint(pd.concat([train_frame["path"], val_frame["path"]]))
    if found != recorded:
        return (
            "the configured data differ from the model's training data (fingerprint "
            f"{found[:12]} here, {recorded[:12]} recorded): this split is not the model's own"
        )
    return None


@st.cache_data(show_spinner="Finding the images…", max_entries=16)
def evaluation_set(
    kind: str,
    folder: str,
    *,
    val_fraction: float | None = None,
    seed: int | None = None,
    subset_per_class: int | None = None,
    max_per_class: int | None = None,
) -> EvaluationSet:
    """The labelled images of a split.

    Args:
        kind: `VALIDATION_SPLIT` (patient-grouped split carved from `<folder>/train`) or
            `FOLDER_SPLIT` (every image of a folder holding NORMAL/ and PNEUMONIA/).
        folder: The dataset root (validation) or the folder to evaluate.
        val_fraction: Share of patients held out (validation only; default: the core's,
            `pneumonet_core.inference.ood.training_split_settings`).
        seed: Split seed (validation only; default: the core's).
        subset_per_class: The training subset the split was carved from, if any.
        max_per_class: Keep at most this many images per class (a quicker look).

    Returns:
        The images and their labels.

    Raises:
        ValueError: The folder has no usable images (the message says why).
    """
    from pneumonet_core import data
    from pneumonet_core.inference import ood

    if kind == VALIDATION_SPLIT:
        defaults = ood.training_split_settings()
        val_fraction = defaults["val_fraction"] if val_fraction is None else val_fraction
        seed = defaults["seed"] if seed is None else seed
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
        kind=kind,
        folder=str(folder),
        complete=not max_per_class,
    )


def _load_labelled(
    predictor: Any, paths: tuple[str, ...], labels: tuple[int, ...]
) -> tuple[Any, np.ndarray]:
    """The readable images at the model's input size, and their labels (0/1)."""
    from pneumonet_core import data

    loaded = data.load_images(list(paths), predictor.image_size, on_error="skip")
    return loaded, np.asarray(labels, dtype=int)[np.asarray(loaded.kept, dtype=bool)]


@st.cache_data(show_spinner=False, max_entries=16)
def _scores_cached(
    model_path: str, signature: str, paths: tuple[str, ...], labels: tuple[int, ...]
) -> ModelScores:
    predictor = cache.cached_predictor(model_path, signature)
    loaded, kept_labels = _load_labelled(predictor, paths, labels)
    scores = predictor.predict_arrays(loaded.images)
    kept = np.asarray(loaded.kept, dtype=bool)
    summary = models.model_summary(model_path)
    return ModelScores(
        model_path=model_path,
        name=summary.name if summary else Path(model_path).stem,
        threshold=float(predictor.threshold),
        paths=tuple(np.asarray(paths, dtype=object)[kept]),
        labels=kept_labels,
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
    cache.load_predictor(model_path)
    scores = _scores_cached(
        model_path, cache.file_signature(model_path), evaluation.paths, evaluation.labels
    )
    return dataclasses.replace(scores, name=name) if name else scores


@st.cache_data(show_spinner=False, max_entries=8)
def _shortcut_audit_cached(
    model_path: str, signature: str, paths: tuple[str, ...], labels: tuple[int, ...]
) -> dict[str, Any]:
    from pneumonet_core.inference import shortcuts

    predictor = cache.cached_predictor(model_path, signature)
    loaded, kept_labels = _load_labelled(predictor, paths, labels)
    return shortcuts.audit(
        predictor.model, loaded.images, kept_labels, explainer=predictor.grad_cam
    )


def shortcut_audit(model_path: str, evaluation: EvaluationSet) -> dict[str, Any]:
    """The shortcut audit of a model on a labelled set (cached per model file version).

    Returns:
        `inference.shortcuts.audit`'s figures: ROC-AUC with the lungs hidden, with the
        outside hidden, and the Grad-CAM share inside the lungs.

    Raises:
        ValueError: The set lacks one of the classes.
    """
    cache.load_predictor(model_path)
    return _shortcut_audit_cached(
        model_path, cache.file_signature(model_path), evaluation.paths, evaluation.labels
    )


def shortcut_targets() -> dict[str, float]:
    """The audit's targets (lungs-hidden AUC at most, outside-hidden largest drop)."""
    from pneumonet_core.inference import shortcuts

    return dict(shortcuts.TARGETS)


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


@st.cache_data(
    show_spinner=False,
    max_entries=inference.UPLOAD_CACHE_ENTRIES,
    ttl=inference.UPLOAD_CACHE_TTL,
)
def _explain_file_cached(model_path: str, signature: str, image_path: str) -> tuple:
    """`(image, heatmap)` at display size, float32 (h, w) in [0, 1] each (`Predictor.explain`)."""
    explained = cache.cached_predictor(model_path, signature).explain(image_path)
    return explained.image, explained.heatmap


def _most_confident_mistakes(scores: ModelScores, threshold: float, kind: str) -> np.ndarray:
    """Indices of the false positives ("FP") or false negatives ("FN"), most confident first."""
    predicted = scores.scores >= threshold
    if kind == "FP":
        wrong = np.flatnonzero((scores.labels == 0) & predicted)
        return wrong[np.argsort(-scores.scores[wrong])]
    wrong = np.flatnonzero((scores.labels == 1) & ~predicted)
    return wrong[np.argsort(scores.scores[wrong])]


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
    signature = cache.file_signature(scores.model_path)
    explained = []
    for index in _most_confident_mistakes(scores, threshold, kind)[:limit]:
        image, heatmap = _explain_file_cached(scores.model_path, signature, scores.paths[index])
        explained.append(
            ExplainedImage(
                path=scores.paths[index],
                probability=float(scores.scores[index]),
                true_label=text.class_names()[int(scores.labels[index])],
                image=image,
                heatmap=heatmap,
            )
        )
    return explained


def run_histories(model_paths: list[str]) -> dict[str, pd.DataFrame]:
    """Training curves of the models that came from recorded runs.

    Args:
        model_paths: The models compared.

    Returns:
        Model name to its run's metric history (models without a run are left out).
    """
    if not runs.tracking_store_exists():
        return {}
    histories = {}
    for path in model_paths:
        run_id = models.model_run_id(path)
        if not run_id:
            continue
        try:
            history = runs.run_history(run_id)
        except Exception:  # noqa: BLE001  (a run deleted from the store has no curves)
            continue
        summary = models.model_summary(path)
        histories[f"{summary.name} ({run_id[:8]})"] = history
    return histories
