"""Training: Adam + binary cross-entropy, best-epoch checkpoint, MLflow tracking.

`train(config)` runs in the calling process; `jobs.start_training_job` runs it in a background
process. Another process can ask a run to stop by creating its stop file: the run ends after
the current batch and keeps its best model.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pneumonet_core import config as paths
from pneumonet_core import evaluate
from pneumonet_core.augment import AugmentationConfig
from pneumonet_core.data import (
    class_weights,
    data_fingerprint,
    load_images,
    make_dataset,
    training_split,
)
from pneumonet_core.distribute import STRATEGIES, global_batch_size, make_strategy
from pneumonet_core.model import INPUT_NORMALIZATIONS, build_model, default_image_size
from pneumonet_core.modelio import ModelMetadata, check_writable_destination, save_model
from pneumonet_core.preprocessing import check_image_size

MONITORS = {"val_auc": "max", "val_loss": "min"}
LR_SCHEDULES = ("constant", "cosine")
CLASS_BALANCING = ("weights", "none")


@dataclass
class TrainConfig:
    """Everything that defines a training run (logged as MLflow parameters).

    Attributes:
        data_dir: Dataset root holding `train/` (default: `config.data_root()`).
        architecture: "seed" or "pneumonet".
        epochs: Maximum number of epochs.
        image_size: Square input side (default: the architecture's own).
        batch_size: Images per batch.
        learning_rate: Adam's (peak) learning rate.
        lr_schedule: "constant" or "cosine" (cosine decay over all epochs).
        seed: Seed for the initial weights, shuffling, augmentation and (unless
            `split_seed` is set) the validation split.
        split_seed: Seed of the patient-grouped validation split (default: `seed`); fix it to
            compare or ensemble runs of several seeds on one validation split.
        val_fraction: Share of `train/` patients held out for validation.
        augmentation: Training-time augmentation.
        class_balancing: "weights" (balanced class weights) or "none".
        label_smoothing: Binary cross-entropy label smoothing in [0, 0.5).
        dropout_rate: Dropout before the output (default: the architecture's own).
        input_normalization: "none" or "equalize" (per-image histogram equalisation inside
            the model).
        lung_focus: Damping of the image outside the lung region inside the model, in [0, 1]
            (0: off, 1: the outside is hidden).
        monitor: "val_auc" or "val_loss": which epoch is kept as best.
        early_stopping_patience: Stop after this many epochs without improvement (0: never).
        threshold_policy: "youden", "sensitivity:X" (highest threshold with sensitivity >= X)
            or "fixed:X", applied to the validation predictions of the best epoch.
        subset_per_class: Use at most this many `train/` images per class (quick runs).
        on_error: "skip" or "raise" for unreadable training images.
        out: Where the best model is written (default: `<PNEUMONET_HOME>/models/<run>.keras`).
        run_name: MLflow run name.
        distribute: tf.distribute strategy: "none", "mirrored" or "multiworker"; the batch
            size is per replica.
    """

    data_dir: str | None = None
    architecture: str = "seed"
    epochs: int = 10
    image_size: int | None = None
    batch_size: int = 32
    learning_rate: float = 1e-3
    lr_schedule: str = "constant"
    seed: int = 42
    split_seed: int | None = None
    val_fraction: float = 0.2
    augmentation: AugmentationConfig = field(default_factory=AugmentationConfig)
    class_balancing: str = "weights"
    label_smoothing: float = 0.0
    dropout_rate: float | None = None
    input_normalization: str = "none"
    lung_focus: float = 0.0
    monitor: str = "val_auc"
    early_stopping_patience: int = 0
    threshold_policy: str = "youden"
    subset_per_class: int | None = None
    on_error: str = "skip"
    out: str | None = None
    run_name: str | None = None
    distribute: str = "none"

    def __post_init__(self):
        if isinstance(self.augmentation, dict):
            self.augmentation = AugmentationConfig(**self.augmentation)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        checks = [
            (self.epochs >= 1, "epochs", "at least 1"),
            (self.batch_size >= 1, "batch_size", "at least 1"),
            (0 < self.learning_rate < 1, "learning_rate", "in (0, 1)"),
            (self.lr_schedule in LR_SCHEDULES, "lr_schedule", f"one of {LR_SCHEDULES}"),
            (self.monitor in MONITORS, "monitor", f"one of {tuple(MONITORS)}"),
            (
                self.class_balancing in CLASS_BALANCING,
                "class_balancing",
                f"one of {CLASS_BALANCING}",
            ),
            (0 <= self.label_smoothing < 0.5, "label_smoothing", "in [0, 0.5)"),
            (self.early_stopping_patience >= 0, "early_stopping_patience", "0 or more"),
            (self.on_error in ("skip", "raise"), "on_error", "'skip' or 'raise'"),
            (self.distribute in STRATEGIES, "distribute", f"one of {STRATEGIES}"),
            (0.0 <= self.lung_focus <= 1.0, "lung_focus", "in [0, 1]"),
            (
                self.input_normalization in INPUT_NORMALIZATIONS,
                "input_normalization",
                f"one of {INPUT_NORMALIZATIONS}",
            ),
            (0.0 < self.val_fraction <= 0.5, "val_fraction", "in (0, 0.5]"),
            (
                self.dropout_rate is None or 0.0 <= self.dropout_rate < 1.0,
                "dropout_rate",
                "in [0, 1)",
            ),
            (
                self.subset_per_class is None or self.subset_per_class >= 2,
                "subset_per_class",
                "at least 2",
            ),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ValueError(f"{name} must be {expected}, got {getattr(self, name)!r}")
        parse_threshold_policy(self.threshold_policy)
        default_image_size(self.architecture)  # raises ValueError naming the architecture
        if self.image_size is not None:
            check_image_size(self.image_size)
        if self.out is not None and not str(self.out).endswith(".keras"):
            raise ValueError(f"out must be a .keras file, got {self.out!r}")

    def resolved_split_seed(self) -> int:
        return self.seed if self.split_seed is None else self.split_seed

    def resolved_image_size(self) -> int:
        if self.image_size is None:
            return default_image_size(self.architecture)
        return self.image_size

    def to_dict(self) -> dict:
        values = asdict(self)
        values["augmentation"] = self.augmentation.to_dict()
        return values

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        return cls(**values)


def parse_threshold_policy(policy: str) -> tuple[str, float | None]:
    """Split "sensitivity:0.97" into ("sensitivity", 0.97); "youden" into ("youden", None)."""
    name, _, value = str(policy).partition(":")
    if name == "youden" and not value:
        return name, None
    if name in ("sensitivity", "fixed") and value:
        try:
            number = float(value)
        except ValueError:
            number = -1.0
        if 0.0 <= number <= 1.0:
            return name, number
    raise ValueError(
        f"threshold_policy must be 'youden', 'sensitivity:X' or 'fixed:X' with X in [0, 1], "
        f"got {policy!r}"
    )


def choose_threshold(y_true, y_score, policy: str) -> float:
    """Apply a threshold policy to validation labels and scores."""
    name, value = parse_threshold_policy(policy)
    if name == "fixed":
        return float(value)
    if name == "sensitivity":
        return evaluate.threshold_for_sensitivity(y_true, y_score, min_sensitivity=value)
    return evaluate.youden_threshold(y_true, y_score)


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
            learning_rate, decay_steps=max(1, train_config.epochs * steps_per_epoch), alpha=0.02
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

    from pneumonet_core import tracking

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
    from pneumonet_core.augment import build_augmentation

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

    from pneumonet_core import tracking
    from pneumonet_core.callbacks import BestModelCheckpoint, EpochLogger, ProgressReporter

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
    callbacks = [EpochLogger(tracking.log_epoch_metrics), checkpoint, reporter]
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
    """Out-of-distribution statistics as model-file entries (see `pneumonet_core.ood`).

    Returns:
        `{ood.OOD_ENTRY: bytes}`, or `{}` for a run too small to fit them (the model then gets
        the simple checks only).
    """
    from pneumonet_core import ood, tracking

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
