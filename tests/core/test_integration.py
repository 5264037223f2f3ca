"""End to end on the real shared data: train through the `pneumonet` command, then evaluate.

A small stratified subset keeps it to well under a minute on two CPU cores. Skipped, with the
reason, when the shared data folder is absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pneumonet_core.governance import tracking
from pneumonet_core.models.modelio import load_model, read_metadata

pytestmark = pytest.mark.slow

EPOCHS = 2
IMAGE_SIZE = 64
SUBSET_PER_CLASS = 60


def pneumonet_command() -> list[str]:
    executable = shutil.which("pneumonet", path=str(Path(sys.executable).parent))
    return [executable] if executable else [sys.executable, "-m", "pneumonet_core.cli"]


def run_pneumonet(*args: str, env: dict, timeout: int = 540) -> subprocess.CompletedProcess:
    completed = subprocess.run(
        [*pneumonet_command(), *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    assert completed.returncode == 0, f"{args}\n{completed.stdout[-2000:]}\n{completed.stderr}"
    return completed


@pytest.fixture(scope="module")
def trained_on_real_data(real_data, tmp_path_factory):
    data = real_data
    home = tmp_path_factory.mktemp("integration_home")
    out = home / "tmp" / "model.keras"
    env = {**os.environ, "PNEUMONET_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}
    for name in ("PNEUMONET_MODEL", "MLFLOW_TRACKING_URI"):
        env.pop(name, None)
    completed = run_pneumonet(
        "train",
        str(data),
        "--arch",
        "seed",
        "--epochs",
        str(EPOCHS),
        "--image-size",
        str(IMAGE_SIZE),
        "--subset-per-class",
        str(SUBSET_PER_CLASS),
        "--batch-size",
        "16",
        "--out",
        str(out),
        env=env,
    )
    match = re.search(r"^Run ([0-9a-f]{32}) recorded in", completed.stdout, re.MULTILINE)
    assert match, completed.stdout
    return {"data": data, "home": home, "out": out, "env": env, "run_id": match.group(1)}


def test_cli_training_writes_a_model_with_metadata(trained_on_real_data):
    out = trained_on_real_data["out"]
    metadata = read_metadata(out)
    assert metadata.architecture == "seed"
    assert metadata.image_size == IMAGE_SIZE
    assert metadata.run_id == trained_on_real_data["run_id"]
    assert 0.0 <= metadata.threshold <= 1.0
    assert len(metadata.training_data_fingerprint) == 64
    validation = metadata.metrics["validation"]
    assert validation["n"] > 0
    assert sum(validation["confusion_matrix"].values()) == validation["n"]
    model, loaded_metadata = load_model(out)
    assert loaded_metadata == metadata
    assert model.input_shape == (None, IMAGE_SIZE, IMAGE_SIZE, 1)


def test_cli_training_recorded_per_epoch_metrics(trained_on_real_data, monkeypatch):
    monkeypatch.setenv("PNEUMONET_HOME", str(trained_on_real_data["home"]))
    run_id = trained_on_real_data["run_id"]
    info = tracking.run_info(run_id)
    assert info["status"] == "FINISHED"
    assert int(info["params"]["train_images"]) + int(info["params"]["val_images"]) == (
        2 * SUBSET_PER_CLASS
    )
    history = tracking.metric_history(run_id)
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", "val_auc"):
        assert history.loc[history["key"] == key, "step"].tolist() == list(range(1, EPOCHS + 1))


def test_cli_evaluate_on_real_validation_images_is_well_formed(trained_on_real_data):
    val = trained_on_real_data["data"] / "val"
    completed = run_pneumonet(
        "evaluate",
        str(val),
        "--model",
        str(trained_on_real_data["out"]),
        "--json",
        env=trained_on_real_data["env"],
        timeout=300,
    )
    metrics = json.loads(completed.stdout)
    expected_n = sum(1 for path in val.rglob("*") if path.suffix.lower() in (".jpeg", ".jpg"))
    assert metrics["n"] == expected_n
    assert set(metrics["confusion_matrix"]) == {"tn", "fp", "fn", "tp"}
    assert sum(metrics["confusion_matrix"].values()) == expected_n
    for key in ("accuracy", "sensitivity", "specificity"):
        assert 0.0 <= metrics[key] <= 1.0
    model_threshold = read_metadata(trained_on_real_data["out"]).threshold
    assert metrics["threshold"] == pytest.approx(model_threshold)
    assert metrics["unreadable"] == []
