"""Training: Adam + binary cross-entropy, best-epoch checkpoint, MLflow tracking.

`train(config)` runs in the calling process; `jobs.start_training_job` runs it in a background
process. Another process can ask a run to stop by creating its stop file: the run ends after
the current batch and keeps its best model.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pneumonet_core.data import (
    class_weights,
    data_fingerprint,
    load_images,
    make_dataset,
    training_split,
)
from pneumonet_core.metrics import classification as evaluate
from pneumonet_core.models.architectures import build_model
from pneumonet_core.models.modelio import ModelMetadata, check_writable_destination, save_model
from pneumonet_core.training.distribute import global_batch_size, make_strategy
from pneumonet_core.training.train_config import (  # noqa: F401  (re-exported: train's public API)
    CLASS_BALANCING,
    COSINE_FLOOR,
    LR_SCHEDULES,
    MONITORS,
    TrainConfig,
    choose_threshold,
    parse_threshold_policy,
)
from pneumonet_core.utils import config as paths


@dataclass
class TrainResult:
    """What a finished (or stopped) run produced."""

    run_id: str
    model_path: str
    best_epoch: int
    epochs_run: int
    stopped_by_user: bool
    threshold: float
    val_metrics: dict
    duration_s: float
    parameters: int = 0
    train_images: int = 0
    val_images: int = 0


@dataclass
class PreparedData:
    """Decoded training and validation images with their file lists."""

    train_frame: pd.DataFrame
    val_frame: pd.DataFrame
    train_images: np.ndarray
    val_images: np.ndarray
    skipped: list[tuple[str, str]]
    fingerprint: str


def prepare_data(train_config: TrainConfig) -> PreparedData:
    """Scan `train/`, split it by patient, and decode both parts (unreadable files handled)."""
    train_frame, val_frame = training_split(
        train_config.data_dir or paths.data_root(),
        val_fraction=train_config.val_fraction,
        seed=train_config.resolved_split_seed(),
        subset_per_class=train_config.subset_per_class,
    )
    fingerprint = data_fingerprint(pd.concat([train_frame["path"], val_frame["path"]]))
    size = train_config.resolved_image_size()
    train_loaded = load_images(train_frame["path"], size, on_error=train_config.on_error)
    val_loaded = load_images(val_frame["path"], size, on_error=train_config.on_error)
    train_frame = train_frame[train_loaded.kept].reset_index(drop=True)
    val_frame = val_frame[val_loaded.kept].reset_index(drop=True)
    return PreparedData(
        train_frame=train_frame,
        val_frame=val_frame,
        train_images=train_loaded.images,
        val_images=val_loaded.images,
        skipped=train_loaded.errors + val_loaded.errors,
        fingerprint=fingerprint,
    )


def _compile(model, train_config: TrainConfig, steps_per_epoch: int) -> None:
    import keras

    learning_rate = train_config.learning_rate
    if train_config.lr_schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            learning_rate,
            decay_steps=max(1, train_config.epochs * steps_per_epoch),
            alpha=COSINE_FLOOR,
        )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.BinaryCrossentropy(label_smoothing=train_config.label_smoothing),
        metrics=[
            keras.metrics.BinaryAccuracy(name="accuracy"),
            keras.metrics.AUC(name="auc"),
            keras.metrics.Precision(name="precision"),
            keras.metrics.Recall(name="recall"),
        ],
    )


def train(
    train_config: TrainConfig,
    *,
    stop_file: str | os.PathLike | None = None,
    status_file: str | os.PathLike | None = None,
    verbose: int = 1,
) -> TrainResult:
    """Train a model, record the run in MLflow, and write the best epoch's model.

    Args:
        train_config: The run's settings.
        stop_file: If this file appears, training ends after the current batch.
        status_file: JSON progress (epoch, batch, run id) is written here for other processes.
        verbose: Keras progress output (1: progress bar, 2: one line per epoch, 0: silent).

    Returns:
        A TrainResult; the model file holds the chosen threshold and validation metrics.
    """
    import keras

    from pneumonet_core.governance import tracking

    started = time.monotonic()
    # Fail now, not after training, when the model could not be written.
    check_writable_destination(train_config.out or paths.default_model_path())
    keras.utils.set_random_seed(train_config.seed)
    session = _build_session(train_config)
    with tracking.start_training_run(train_config.run_name) as run_id:
        out = Path(train_config.out or paths.default_model_path(run_id))
        tracking.log_run_start(
            _run_parameters(train_config, session),
            {"pneumonet.architecture": train_config.architecture, "pneumonet.kind": "training"},
            session.data.skipped,
        )
        fitted = _fit(session, train_config, out, run_id, stop_file, status_file, verbose)
        outcome = _save_best_model(session, train_config, fitted, out, run_id)
        duration = time.monotonic() - started
        tracking.log_run_end(
            out,
            _predictions_frame(session, outcome.val_scores, outcome.threshold),
            outcome.val_metrics,
            stopped=fitted.stopped_by_user,
            duration_s=duration,
            best_epoch=fitted.best_epoch,
        )
    return TrainResult(
        run_id=run_id,
        model_path=str(out),
        best_epoch=fitted.best_epoch,
        epochs_run=fitted.epochs_run,
        stopped_by_user=fitted.stopped_by_user,
        threshold=outcome.threshold,
        val_metrics=outcome.val_metrics,
        duration_s=duration,
        parameters=int(session.model.count_params()),
        train_images=len(session.data.train_frame),
        val_images=len(session.data.val_frame),
    )


@dataclass
class TrainingSession:
    """Everything a run trains with: data, tf.data pipelines and the compiled model."""

    data: PreparedData
    train_labels: np.ndarray
    val_labels: np.ndarray
    train_dataset: object
    val_dataset: object
    model: object


@dataclass
class FitOutcome:
    """How the fit ended: the best epoch (1-based) and its weights."""

    best_epoch: int
    best_weights: list
    epochs_run: int
    stopped_by_user: bool


@dataclass
class SavedModelOutcome:
    """The best model's validation scores, threshold and metrics, as written to its file."""

    val_scores: np.ndarray
    threshold: float
    val_metrics: dict


def _build_session(train_config: TrainConfig) -> TrainingSession:
    """Decode and split the data, build the pipelines and the compiled model."""
    from pneumonet_core.data.augment import build_augmentation

    strategy = make_strategy(train_config.distribute)
    batch_size = global_batch_size(train_config.batch_size, strategy)
    data = prepare_data(train_config)
    augmentation = build_augmentation(train_config.augmentation, seed=train_config.seed)
    train_labels = data.train_frame["label_index"].to_numpy()
    val_labels = data.val_frame["label_index"].to_numpy()
    train_dataset = make_dataset(
        data.train_images,
        train_labels,
        batch_size=batch_size,
        training=True,
        augmentation=augmentation,
        seed=train_config.seed,
    )
    val_dataset = make_dataset(data.val_images, val_labels, batch_size=batch_size)
    with strategy.scope():
        model = build_model(
            train_config.architecture,
            train_config.resolved_image_size(),
            train_config.dropout_rate,
            train_config.input_normalization,
            train_config.lung_focus,
        )
        _compile(model, train_config, steps_per_epoch=len(train_dataset))
    return TrainingSession(data, train_labels, val_labels, train_dataset, val_dataset, model)


def _fit(session, train_config, out, run_id, stop_file, status_file, verbose) -> FitOutcome:
    """Fit with the checkpoint, MLflow epoch logging, progress/stop and early stopping."""
    import keras

    from pneumonet_core.governance import tracking
    from pneumonet_core.training.callbacks import (
        BestModelCheckpoint,
        EpochLogger,
        ExactValidationAuc,
        ProgressReporter,
    )

    checkpoint = BestModelCheckpoint(
        out,
        _metadata(train_config, session, run_id),
        monitor=train_config.monitor,
        mode=MONITORS[train_config.monitor],
    )
    reporter = ProgressReporter(
        status_file,
        stop_file,
        run_id=run_id,
        epochs=train_config.epochs,
        batches=len(session.train_dataset),
    )
    exact_auc = ExactValidationAuc(session.val_dataset, session.val_labels)
    callbacks = [exact_auc, EpochLogger(tracking.log_epoch_metrics), checkpoint, reporter]
    if train_config.early_stopping_patience:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=train_config.monitor,
                mode=MONITORS[train_config.monitor],
                patience=train_config.early_stopping_patience,
            )
        )
    weights = (
        class_weights(session.train_labels) if train_config.class_balancing == "weights" else None
    )
    history = session.model.fit(
        session.train_dataset,
        validation_data=session.val_dataset,
        epochs=train_config.epochs,
        class_weight=weights,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,
    )
    if checkpoint.best_epoch is None:
        raise RuntimeError("training stopped before the first epoch finished: no model saved")
    return FitOutcome(
        best_epoch=checkpoint.best_epoch + 1,
        best_weights=checkpoint.best_weights,
        epochs_run=len(history.history.get("loss", [])),
        stopped_by_user=reporter.stop_requested,
    )


def _metadata(train_config: TrainConfig, session: TrainingSession, run_id: str) -> ModelMetadata:
    return ModelMetadata(
        architecture=train_config.architecture,
        image_size=train_config.resolved_image_size(),
        training_data_fingerprint=session.data.fingerprint,
        run_id=run_id,
        training=train_config.to_dict(),
    )


def _save_best_model(
    session: TrainingSession, train_config: TrainConfig, fitted: FitOutcome, out: Path, run_id: str
) -> SavedModelOutcome:
    """Restore the best epoch, choose the threshold, fit the OOD guard, write the model once."""
    model = session.model
    model.set_weights(fitted.best_weights)
    val_scores = model.predict(session.val_dataset, verbose=0).ravel()
    threshold = choose_threshold(session.val_labels, val_scores, train_config.threshold_policy)
    val_metrics = evaluate.binary_metrics(session.val_labels, val_scores, threshold=threshold)
    metadata = _metadata(train_config, session, run_id)
    metadata.threshold = threshold
    metadata.metrics = {"validation": val_metrics, "best_epoch": fitted.best_epoch}
    ood_entries = _fit_ood_guard(model, session.data, seed=train_config.seed)
    save_model(model, out, metadata, extra_entries=ood_entries)
    return SavedModelOutcome(val_scores, threshold, val_metrics)


def _fit_ood_guard(model, data: PreparedData, *, seed: int) -> dict[str, bytes]:
    """Out-of-distribution statistics as model-file entries (see `pneumonet_core.inference.ood`).

    Returns:
        `{ood.OOD_ENTRY: bytes}`, or `{}` for a run too small to fit them (the model then gets
        the simple checks only).
    """
    from pneumonet_core.governance import tracking
    from pneumonet_core.inference import ood

    try:
        statistics = ood.fit_on_images(model, data.train_images, data.val_images, seed=seed)
    except ValueError as error:
        tracking.log_ood_guard(f"not fitted: {error}")
        return {}
    tracking.log_ood_guard("fitted", statistics.validation_flag_rate)
    return {ood.OOD_ENTRY: statistics.to_bytes()}


def _run_parameters(train_config: TrainConfig, session: TrainingSession) -> dict:
    """The run's MLflow parameters: every setting, augmentation flattened, and the data sizes."""
    data = session.data
    params = train_config.to_dict()
    augmentation = params.pop("augmentation")
    params.update({f"augmentation.{key}": value for key, value in augmentation.items()})
    params.update(
        {
            "image_size": train_config.resolved_image_size(),
            "train_images": len(data.train_frame),
            "val_images": len(data.val_frame),
            "train_patients": data.train_frame["patient_id"].nunique(),
            "val_patients": data.val_frame["patient_id"].nunique(),
            "skipped_images": len(data.skipped),
            "parameters": session.model.count_params(),
            "data_fingerprint": data.fingerprint,
        }
    )
    return params


def _predictions_frame(session: TrainingSession, y_score, threshold: float) -> pd.DataFrame:
    """One row per validation image: file, patient, label, probability and predicted label."""
    val_frame = session.data.val_frame
    return pd.DataFrame(
        {
            "file": val_frame["path"].map(lambda p: Path(p).name),
            "path": val_frame["path"],
            "patient_id": val_frame["patient_id"],
            "label": session.val_labels,
            "probability": y_score,
            "predicted": (y_score >= threshold).astype(int),
        }
    )
