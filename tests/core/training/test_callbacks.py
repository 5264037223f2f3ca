"""callbacks: per-epoch MLflow logging, best-epoch checkpoint, progress file and stop file."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pneumonet_core.metrics.classification import roc_auc
from pneumonet_core.models.modelio import ModelMetadata, read_metadata
from pneumonet_core.training.callbacks import (
    BestModelCheckpoint,
    EpochLogger,
    ExactValidationAuc,
    ProgressReporter,
)


class FakeMlflow:
    def __init__(self):
        self.logged = []

    def log_metrics(self, metrics, step=None):
        self.logged.append((step, dict(metrics)))


@pytest.fixture(scope="module")
def compiled_model():
    import keras

    from pneumonet_core.models.architectures import build_model

    model = build_model("seed", 32)
    model.compile(optimizer=keras.optimizers.Adam(0.003), loss="binary_crossentropy")
    return model


def test_epoch_logger_logs_finite_metrics_at_one_based_steps(compiled_model):
    mlflow = FakeMlflow()
    logger = EpochLogger(mlflow.log_metrics)
    logger.set_model(compiled_model)
    logger.on_epoch_end(0, {"loss": 0.5, "val_auc": 0.8, "broken": float("nan"), "note": "x"})
    logger.on_epoch_end(1, {"loss": 0.4})
    (step1, first), (step2, second) = mlflow.logged
    assert (step1, step2) == (1, 2)
    assert first == {"loss": 0.5, "val_auc": 0.8, "learning_rate": pytest.approx(0.003)}
    assert second["loss"] == 0.4


def test_exact_validation_auc_replaces_the_keras_estimate(compiled_model):
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.random((12, 32, 32, 1)).astype("float32")
    labels = np.array([0, 1] * 6)
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(5)
    scorer = ExactValidationAuc(dataset, labels)
    scorer.set_model(compiled_model)
    logs = {"val_auc": 0.123, "loss": 0.5}
    scorer.on_epoch_end(0, logs)
    exact = roc_auc(labels, compiled_model.predict(dataset, verbose=0).ravel())
    assert logs == {"val_auc": pytest.approx(exact), "loss": 0.5} and exact != 0.123
    one_class = ExactValidationAuc(dataset, np.zeros(12, int))
    one_class.set_model(compiled_model)
    logs = {"val_auc": 0.5}
    one_class.on_epoch_end(0, logs)
    assert logs == {"val_auc": 0.5}  # no exact figure: Keras's stays


def test_checkpoint_keeps_the_best_epoch_when_maximising(compiled_model, tmp_path):
    path = tmp_path / "best.keras"
    checkpoint = BestModelCheckpoint(path, ModelMetadata("seed", 32), monitor="val_auc")
    checkpoint.set_model(compiled_model)
    checkpoint.on_epoch_end(0, {"val_auc": 0.6})
    first_weights = [w.copy() for w in checkpoint.best_weights]
    compiled_model.set_weights([w + 1.0 for w in compiled_model.get_weights()])
    checkpoint.on_epoch_end(1, {"val_auc": 0.8})
    compiled_model.set_weights([w + 1.0 for w in compiled_model.get_weights()])
    checkpoint.on_epoch_end(2, {"val_auc": 0.7})
    checkpoint.on_epoch_end(3, {"val_auc": float("nan")})
    checkpoint.on_epoch_end(4, {"loss": 0.1})
    assert checkpoint.best_epoch == 1
    assert checkpoint.best_value == 0.8
    np.testing.assert_allclose(checkpoint.best_weights[0], first_weights[0] + 1.0)
    metadata = read_metadata(path)
    assert metadata.metrics == {"best_epoch": 2, "val_auc": 0.8}


def test_checkpoint_keeps_the_lowest_value_when_minimising(compiled_model, tmp_path):
    checkpoint = BestModelCheckpoint(
        tmp_path / "best.keras", ModelMetadata("seed", 32), monitor="val_loss", mode="min"
    )
    checkpoint.set_model(compiled_model)
    for epoch, value in enumerate([0.9, 0.5, 0.7]):
        checkpoint.on_epoch_end(epoch, {"val_loss": value})
    assert (checkpoint.best_epoch, checkpoint.best_value) == (1, 0.5)


def test_progress_reporter_writes_status_and_obeys_the_stop_file(compiled_model, tmp_path):
    status_file, stop_file = tmp_path / "status.json", tmp_path / "stop"
    reporter = ProgressReporter(
        status_file, stop_file, run_id="r1", epochs=3, batches=10, interval_s=0.0
    )
    reporter.set_model(compiled_model)
    compiled_model.stop_training = False
    reporter.on_train_begin()
    reporter.on_epoch_begin(0)
    reporter.on_train_batch_end(3)
    status = json.loads(status_file.read_text())
    assert status["run_id"] == "r1"
    assert (status["epoch"], status["epochs"], status["batch"], status["batches"]) == (1, 3, 4, 10)
    assert not reporter.stop_requested and not compiled_model.stop_training
    stop_file.touch()
    reporter.on_train_batch_end(4)
    assert reporter.stop_requested and compiled_model.stop_training
    reporter.on_epoch_end(0)
    assert json.loads(status_file.read_text())["batch"] == 10
    compiled_model.stop_training = False


def test_progress_reporter_throttles_batch_writes(compiled_model, tmp_path):
    status_file = tmp_path / "status.json"
    reporter = ProgressReporter(
        status_file, None, run_id="r1", epochs=1, batches=100, interval_s=3600.0
    )
    reporter.set_model(compiled_model)
    reporter.on_epoch_begin(0)
    reporter.on_train_batch_end(50)
    status = json.loads(status_file.read_text())
    assert status["batch"] == 0  # the batch write was throttled
    assert math.isclose(status["training_started_at"], reporter.started)
