"""train: a tiny real training run, what it records in MLflow, stop requests, reproducibility."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from pneumonet_core.data import DatasetError, data_fingerprint, scan_dataset
from pneumonet_core.data.augment import AugmentationConfig
from pneumonet_core.governance import tracking
from pneumonet_core.imaging.preprocessing import preprocess_image
from pneumonet_core.inference.ood import load_statistics
from pneumonet_core.models.modelio import load_model, read_metadata
from pneumonet_core.training.train_config import COSINE_FLOOR
from pneumonet_core.training.trainer import (
    TrainConfig,
    choose_threshold,
    parse_threshold_policy,
    prepare_data,
    train,
)

EPOCH_METRICS = ("accuracy", "val_accuracy", "loss", "val_loss", "val_auc", "auc")


def mlflow_client():
    tracking.configure()
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def artifact_names(run_id: str, path: str | None = None) -> set[str]:
    return {item.path for item in mlflow_client().list_artifacts(run_id, path)}


# --- the shared tiny run ---------------------------------------------------------------------


def test_model_file_carries_threshold_metrics_and_fingerprint(trained):
    result = trained.result
    metadata = read_metadata(trained.model_path)
    assert metadata.architecture == "seed"
    assert metadata.image_size == 32
    assert metadata.run_id == result.run_id
    assert metadata.threshold == pytest.approx(result.threshold)
    assert 0.0 <= metadata.threshold <= 1.0
    assert metadata.metrics["best_epoch"] == result.best_epoch
    assert metadata.metrics["validation"]["n"] == result.val_metrics["n"]
    assert metadata.metrics["validation"]["accuracy"] == pytest.approx(
        result.val_metrics["accuracy"]
    )
    train_paths = scan_dataset(trained.data_dir).split("train")["path"]
    assert metadata.training_data_fingerprint == data_fingerprint(train_paths)
    assert metadata.training["epochs"] == 2 and metadata.training["seed"] == 3
    assert result.epochs_run == 2 and not result.stopped_by_user
    assert 1 <= result.best_epoch <= 2


def test_trained_model_carries_its_ood_statistics(trained, monkeypatch):
    statistics = load_statistics(trained.model_path)
    assert statistics is not None
    data = prepare_data(trained.config)
    assert statistics.n_fit == len(data.train_frame)
    assert statistics.n_validation == len(data.val_frame)
    assert 0.0 <= statistics.validation_flag_rate <= 0.5
    monkeypatch.setenv("PNEUMONET_HOME", str(trained.home))
    run = mlflow_client().get_run(trained.result.run_id)
    assert run.data.tags["pneumonet.ood_guard"] == "fitted"
    assert run.data.metrics["ood_validation_flag_rate"] == pytest.approx(
        statistics.validation_flag_rate
    )


def test_unwritable_output_fails_before_any_data_is_read(tmp_path, train_config_factory):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    missing_data = tmp_path / "no-data-here"
    config = train_config_factory(missing_data, blocker / "model.keras")
    with pytest.raises(OSError, match="cannot write the model"):
        train(config, verbose=0)


def test_validation_split_has_no_patient_from_training(trained):
    data = prepare_data(trained.config)
    assert not set(data.train_frame["patient_id"]) & set(data.val_frame["patient_id"])
    assert len(data.train_frame) + len(data.val_frame) == 48
    assert data.train_images.shape == (len(data.train_frame), 32, 32, 1)
    assert trained.result.val_metrics["n"] == len(data.val_frame)


def expected_learning_rates(config):
    """Learning rate at the end of each epoch, written out from the schedule's definition."""
    if config.lr_schedule == "constant":
        return [config.learning_rate] * config.epochs
    rates = []
    for epoch in range(1, config.epochs + 1):
        cosine = 0.5 * (1 + math.cos(math.pi * epoch / config.epochs))
        rates.append(config.learning_rate * (COSINE_FLOOR + (1 - COSINE_FLOOR) * cosine))
    return rates


def test_mlflow_run_has_per_epoch_metrics(trained, monkeypatch):
    trained.activate(monkeypatch)
    history = tracking.metric_history(trained.result.run_id)
    for key in EPOCH_METRICS:
        steps = history.loc[history["key"] == key, "step"].tolist()
        assert steps == [1, 2], f"{key}: {steps}"
    learning_rates = history.loc[history["key"] == "learning_rate", "value"]
    assert learning_rates.tolist() == pytest.approx(
        expected_learning_rates(trained.config), rel=1e-5
    )
    final = history.loc[history["key"] == "final_val_accuracy", "value"].tolist()
    assert final == pytest.approx([trained.result.val_metrics["accuracy"]])


def test_the_summary_is_the_curves_point_at_the_best_epoch(trained, monkeypatch):
    """The summary (the model file's validation figures) and the curves agree: the curve's
    validation ROC-AUC at the best epoch is the summary's, and the `final_val_*` figures are
    logged at that epoch (1-based, as the curves)."""
    trained.activate(monkeypatch)
    metrics = read_metadata(trained.model_path).metrics
    best_epoch = metrics["best_epoch"]
    assert best_epoch == trained.result.best_epoch and 1 <= best_epoch <= trained.config.epochs
    history = tracking.metric_history(trained.result.run_id)
    curve = history[history["key"] == "val_auc"].set_index("step")["value"]
    assert curve[best_epoch] == pytest.approx(metrics["validation"]["roc_auc"], abs=1e-6)
    final = history[history["key"] == "final_val_roc_auc"]
    assert final["step"].tolist() == [best_epoch]


def test_the_curves_validation_auc_is_exact_where_keras_would_estimate_it_badly(
    tmp_path, train_config_factory, monkeypatch
):
    """Noise images: the model's scores crowd together, where Keras's 200-threshold AUC is far
    from the exact one; the curve must still show the summary's exact ROC-AUC."""
    from image_files import encode, patient_file_names

    rng = np.random.default_rng(5)
    for label in ("NORMAL", "PNEUMONIA"):
        folder = tmp_path / "noise" / "train" / label
        folder.mkdir(parents=True)
        for name in patient_file_names(label, 16):
            pixels = (rng.random((40, 40)) * 255).astype(np.uint8)
            (folder / name).write_bytes(encode(pixels, "JPEG"))
    monkeypatch.setenv("PNEUMONET_HOME", str(tmp_path / "home"))
    config = train_config_factory(tmp_path / "noise", tmp_path / "noise.keras", epochs=1)
    result = train(config, verbose=0)
    summary = read_metadata(result.model_path).metrics["validation"]["roc_auc"]
    history = tracking.metric_history(result.run_id)
    curve = history[history["key"] == "val_auc"]["value"].tolist()
    assert curve == [pytest.approx(summary, abs=1e-6)]


def test_mlflow_run_records_params_tags_and_status(trained, monkeypatch):
    trained.activate(monkeypatch)
    info = tracking.run_info(trained.result.run_id)
    assert info["status"] == "FINISHED"
    params = info["params"]
    assert params["architecture"] == "seed"
    assert params["image_size"] == "32"
    assert params["augmentation.horizontal_flip"] == "True"
    assert int(params["train_images"]) + int(params["val_images"]) == 48
    assert info["tags"]["pneumonet.stopped_by_user"] == "false"
    assert info["tags"]["pneumonet.model_path"] == str(trained.model_path)
    runs = tracking.list_runs()
    assert runs["run_id"].tolist() == [trained.result.run_id]


def test_mlflow_run_has_the_evaluation_artifacts(trained, monkeypatch, tmp_path):
    trained.activate(monkeypatch)
    run_id = trained.result.run_id
    names = artifact_names(run_id)
    assert {"metrics.json", "confusion_matrix.json", "predictions.csv", "model"} <= names
    assert artifact_names(run_id, "model") == {"model/tiny.keras"}

    metrics = json.loads(tracking.download_artifact(run_id, "metrics.json", tmp_path).read_text())
    assert metrics["threshold"] == pytest.approx(trained.result.threshold)
    assert metrics["accuracy"] == pytest.approx(trained.result.val_metrics["accuracy"])
    matrix = json.loads(
        tracking.download_artifact(run_id, "confusion_matrix.json", tmp_path).read_text()
    )
    assert set(matrix) == {"tn", "fp", "fn", "tp"}
    assert sum(matrix.values()) == trained.result.val_metrics["n"]


def test_logged_predictions_are_the_saved_models_on_the_validation_files(
    trained, monkeypatch, tmp_path
):
    trained.activate(monkeypatch)
    csv = tracking.download_artifact(trained.result.run_id, "predictions.csv", tmp_path)
    predictions = pd.read_csv(csv)
    assert list(predictions.columns) == [
        "file",
        "path",
        "patient_id",
        "label",
        "probability",
        "predicted",
    ]
    val_frame = prepare_data(trained.config).val_frame
    assert predictions["path"].tolist() == val_frame["path"].tolist()
    assert predictions["label"].tolist() == val_frame["label_index"].tolist()
    model, metadata = load_model(trained.model_path)
    images = np.stack([preprocess_image(path, 32) for path in predictions["path"]])
    probabilities = np.asarray(model(images, training=False)).ravel()
    np.testing.assert_allclose(probabilities, predictions["probability"], atol=1e-5)
    # The threshold is one of the scores (Youden); the CSV rounds scores, so skip exact ties.
    clear = (predictions["probability"] - metadata.threshold).abs() > 1e-6
    expected = (predictions["probability"] >= metadata.threshold).astype(int)
    assert clear.sum() >= len(predictions) - 1
    assert predictions["predicted"][clear].tolist() == expected[clear].tolist()


# --- more runs -------------------------------------------------------------------------------


def test_training_is_reproducible_for_a_seed(trained, train_config_factory, tmp_path):
    first, _ = load_model(trained.model_path)
    same = train(train_config_factory(trained.data_dir, tmp_path / "same.keras"), verbose=0)
    again, _ = load_model(same.model_path)
    for a, b in zip(first.get_weights(), again.get_weights(), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert same.threshold == pytest.approx(trained.result.threshold)
    other = train(
        train_config_factory(trained.data_dir, tmp_path / "other.keras", seed=4), verbose=0
    )
    different, _ = load_model(other.model_path)
    assert not all(
        np.allclose(a, b) for a, b in zip(first.get_weights(), different.get_weights(), strict=True)
    )


def test_stop_file_stops_after_the_first_batch_and_keeps_a_model(
    dataset_factory, train_config_factory, tmp_path, isolated_state, corrupt_jpeg
):
    root = dataset_factory(per_class=12)
    corrupt = root / "train" / "PNEUMONIA" / corrupt_jpeg.name
    corrupt.write_bytes(corrupt_jpeg.read_bytes())
    stop_file = tmp_path / "stop"
    stop_file.touch()
    status_file = tmp_path / "status.json"
    config = train_config_factory(root, None, epochs=5, threshold_policy="fixed:0.42")
    result = train(config, stop_file=stop_file, status_file=status_file, verbose=0)

    assert result.stopped_by_user
    assert result.epochs_run == 1 and result.best_epoch == 1
    expected_path = isolated_state / "models" / f"{result.run_id}.keras"
    assert result.model_path == str(expected_path) and expected_path.is_file()
    assert read_metadata(expected_path).threshold == pytest.approx(0.42)
    assert result.threshold == pytest.approx(0.42)
    status = json.loads(status_file.read_text())
    assert status["run_id"] == result.run_id
    assert status["epochs"] == 5 and status["epoch"] == 1

    info = tracking.run_info(result.run_id)
    assert info["tags"]["pneumonet.stopped_by_user"] == "true"
    assert info["params"]["skipped_images"] == "1"
    assert "skipped_images.json" in artifact_names(result.run_id)
    history = tracking.metric_history(result.run_id)
    assert history.loc[history["key"] == "loss", "step"].tolist() == [1]


# --- data preparation ------------------------------------------------------------------------


def test_prepare_data_skips_or_refuses_unreadable_images(
    dataset_factory, train_config_factory, corrupt_jpeg
):
    root = dataset_factory(per_class=8)
    corrupt = root / "train" / "PNEUMONIA" / corrupt_jpeg.name
    corrupt.write_bytes(corrupt_jpeg.read_bytes())
    data = prepare_data(train_config_factory(root, None, on_error="skip"))
    assert [path for path, _ in data.skipped] == [str(corrupt)]
    kept = set(data.train_frame["path"]) | set(data.val_frame["path"])
    assert str(corrupt) not in kept and len(kept) == 16
    assert len(data.train_images) == len(data.train_frame)
    assert len(data.val_images) == len(data.val_frame)
    with pytest.raises(DatasetError, match="cannot read") as caught:
        prepare_data(train_config_factory(root, None, on_error="raise"))
    assert str(corrupt) in str(caught.value)


def test_prepare_data_uses_a_stratified_subset(synthetic_data, train_config_factory):
    data = prepare_data(train_config_factory(synthetic_data, None, subset_per_class=10))
    frame = pd.concat([data.train_frame, data.val_frame])
    assert frame["label_index"].value_counts().to_dict() == {0: 10, 1: 10}


def test_prepare_data_without_train_folder_raises(dataset_factory, train_config_factory):
    root = dataset_factory(per_class=4, splits=("val", "test"))
    with pytest.raises(ValueError, match="no train/ images"):
        prepare_data(train_config_factory(root, None))


# --- configuration ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("epochs", 0),
        ("batch_size", 0),
        ("learning_rate", 0.0),
        ("learning_rate", 1.5),
        ("lr_schedule", "linear"),
        ("monitor", "val_accuracy"),
        ("class_balancing", "oversample"),
        ("label_smoothing", 0.5),
        ("early_stopping_patience", -1),
        ("on_error", "ignore"),
        ("subset_per_class", 1),
        ("threshold_policy", "median"),
        ("out", "model.h5"),
    ],
)
def test_train_config_validation_names_the_field(field, value):
    with pytest.raises(ValueError, match=field) as caught:
        TrainConfig(**{field: value})
    assert repr(value) in str(caught.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("architecture", "resnet"),
        ("image_size", 16),
        ("image_size", 0),
        ("val_fraction", 0.9),
        ("dropout_rate", 1.5),
    ],
)
def test_train_config_rejects_settings_training_would_refuse(field, value):
    with pytest.raises(ValueError, match=field):
        TrainConfig(**{field: value})


def test_train_config_round_trips_through_a_dict():
    config = TrainConfig(
        architecture="pneumonet",
        epochs=3,
        augmentation=AugmentationConfig(zoom=0.0),
        threshold_policy="sensitivity:0.9",
    )
    values = json.loads(json.dumps(config.to_dict()))
    assert values["augmentation"]["zoom"] == 0.0
    restored = TrainConfig.from_dict(values)
    assert restored == config
    assert isinstance(restored.augmentation, AugmentationConfig)


def test_resolved_image_size_defaults_to_the_architecture():
    assert TrainConfig(architecture="seed").resolved_image_size() == 150
    assert TrainConfig(architecture="pneumonet").resolved_image_size() == 128
    assert TrainConfig(architecture="seed", image_size=64).resolved_image_size() == 64


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ("youden", ("youden", None)),
        ("sensitivity:0.95", ("sensitivity", 0.95)),
        ("fixed:0.3", ("fixed", 0.3)),
        ("fixed:0", ("fixed", 0.0)),
        ("fixed:1", ("fixed", 1.0)),
    ],
)
def test_parse_threshold_policy(policy, expected):
    assert parse_threshold_policy(policy) == expected


@pytest.mark.parametrize(
    "bad", ["", "youden:0.5", "fixed", "fixed:1.5", "sensitivity:-0.1", "sensitivity:high", "max"]
)
def test_bad_threshold_policy_raises_naming_it(bad):
    with pytest.raises(ValueError, match="threshold_policy") as caught:
        parse_threshold_policy(bad)
    assert repr(bad) in str(caught.value)


# The evaluate tests' hand-computed case: Youden's J is best at 0.8; sensitivity 0.75 first
# holds at 0.55.
Y_TRUE = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
Y_SCORE = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9, 0.55, 0.3]


@pytest.mark.parametrize(
    ("policy", "expected"),
    [("youden", 0.8), ("sensitivity:0.75", 0.55), ("sensitivity:1", 0.3), ("fixed:0.42", 0.42)],
)
def test_choose_threshold_applies_the_policy(policy, expected):
    threshold = choose_threshold(Y_TRUE, Y_SCORE, policy)
    assert threshold == pytest.approx(expected)
    assert math.isfinite(threshold)
