"""Keras callbacks used by training: epoch logging, best checkpoint, progress and stop."""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras

from pneumonet_core.metrics.classification import roc_auc
from pneumonet_core.models.modelio import ModelMetadata, save_model
from pneumonet_core.utils.atomic import write_json_atomically


class ExactValidationAuc(keras.callbacks.Callback):
    """Replaces each epoch's `val_auc` (Keras's estimate from 200 fixed thresholds, far off
    when the scores crowd together) with the exact ROC-AUC of the validation images.

    It must come first among the callbacks, so the logger (the curves), the checkpoint and
    early stopping all see the exact value: the curve's point at the best epoch is then the
    ROC-AUC the trained model's summary reports. It costs one more pass over the validation
    images per epoch.
    """

    def __init__(self, val_dataset, val_labels):
        super().__init__()
        self.val_dataset, self.val_labels = val_dataset, val_labels

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and "val_auc" in logs:
            scores = self.model.predict(self.val_dataset, verbose=0).ravel()
            exact = roc_auc(self.val_labels, scores)
            if math.isfinite(exact):  # one class only: Keras's value stays
                logs["val_auc"] = exact


class EpochLogger(keras.callbacks.Callback):
    """Passes every epoch's finite train and validation metrics to `log(metrics, step=epoch)`.

    Training gives it `tracking.log_epoch_metrics`, so MLflow stays inside `tracking`.
    """

    def __init__(self, log):
        super().__init__()
        self.log = log

    def on_epoch_end(self, epoch, logs=None):
        finite = {
            key: float(value)
            for key, value in (logs or {}).items()
            if isinstance(value, int | float) and math.isfinite(value)
        }
        learning_rate = self.model.optimizer.learning_rate
        finite["learning_rate"] = float(keras.ops.convert_to_numpy(learning_rate))
        self.log(finite, step=epoch + 1)


class BestModelCheckpoint(keras.callbacks.Callback):
    """Keeps the best epoch's weights in memory and writes them, with metadata, to `path`."""

    def __init__(self, path, metadata: ModelMetadata, *, monitor="val_auc", mode="max"):
        super().__init__()
        self.path, self.metadata, self.monitor, self.mode = Path(path), metadata, monitor, mode
        self.best_value = None
        self.best_epoch = None
        self.best_weights = None

    def _improved(self, value: float) -> bool:
        if self.best_value is None:
            return True
        return value > self.best_value if self.mode == "max" else value < self.best_value

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(value) or not self._improved(float(value)):
            return
        self.best_value, self.best_epoch = float(value), epoch
        self.best_weights = self.model.get_weights()
        self.metadata.metrics = {"best_epoch": epoch + 1, self.monitor: float(value)}
        save_model(self.model, self.path, self.metadata)


class ProgressReporter(keras.callbacks.Callback):
    """Writes progress to a JSON status file and stops after a batch when a stop file appears."""

    def __init__(self, status_file, stop_file, *, run_id, epochs, batches, interval_s=1.0):
        super().__init__()
        self.status_file = Path(status_file) if status_file else None
        self.stop_file = Path(stop_file) if stop_file else None
        self.run_id, self.epochs, self.batches = run_id, epochs, batches
        self.interval_s = interval_s
        self.stop_requested = False
        self.epoch = 0
        self.started = time.time()
        self.last_write = 0.0

    def _write(self, batch: int, force: bool = False) -> None:
        now = time.time()
        if self.status_file is None or (not force and now - self.last_write < self.interval_s):
            return
        self.last_write = now
        write_json_atomically(
            self.status_file,
            {
                "run_id": self.run_id,
                "epoch": self.epoch,
                "epochs": self.epochs,
                "batch": batch,
                "batches": self.batches,
                "training_started_at": self.started,
                "updated_at": now,
            },
        )

    def on_train_begin(self, logs=None):
        self._write(0, force=True)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch + 1
        self._write(0, force=True)

    def on_train_batch_end(self, batch, logs=None):
        self._write(batch + 1)
        if self.stop_file is not None and self.stop_file.exists():
            self.stop_requested = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        self._write(self.batches, force=True)
