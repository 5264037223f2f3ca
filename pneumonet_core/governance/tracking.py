"""Run tracking with MLflow: the only module that imports mlflow.

The default store is an embedded SQLite database under `PNEUMONET_HOME`; set
`MLFLOW_TRACKING_URI` to use a tracking server instead.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import tempfile
from pathlib import Path

import pandas as pd

from pneumonet_core.utils import config

EXPERIMENT_NAME = "pneumonet"
HISTORY_COLUMNS = ["key", "step", "value", "timestamp"]


def _is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:")) or "://" not in uri


def configure():
    """Point MLflow at the configured store and return the `mlflow` module."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    import mlflow

    for noisy in ("alembic", "mlflow", "mlflow.store", "mlflow.tracking"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    uri = config.tracking_uri()
    if _is_local_store(uri):
        config.state_dir().mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    return mlflow


def ensure_experiment(name: str = EXPERIMENT_NAME) -> str:
    """The experiment's id, creating it (with artifacts under PNEUMONET_HOME) if needed."""
    mlflow = configure()
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    artifact_location = None
    if _is_local_store(config.tracking_uri()):
        artifact_location = (config.artifact_root() / name).resolve().as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=artifact_location)
    except Exception:
        # Another process created it first.
        return mlflow.get_experiment_by_name(name).experiment_id


def _client():
    configure()
    from mlflow.tracking import MlflowClient

    return MlflowClient()


def list_runs(experiment: str = EXPERIMENT_NAME) -> pd.DataFrame:
    """Every run of the experiment, newest first: parameters, metrics, status and timings."""
    mlflow = configure()
    if mlflow.get_experiment_by_name(experiment) is None:
        return pd.DataFrame()
    runs = mlflow.search_runs(experiment_names=[experiment], order_by=["start_time DESC"])
    if runs.empty:
        return runs
    runs["duration_s"] = (runs["end_time"] - runs["start_time"]).dt.total_seconds()
    return runs


def metric_history(run_id: str) -> pd.DataFrame:
    """All logged values of every metric of a run: columns `key, step, value, timestamp`."""
    client = _client()
    run = client.get_run(run_id)
    rows = [
        {"key": key, "step": m.step, "value": m.value, "timestamp": m.timestamp}
        for key in run.data.metrics
        for m in client.get_metric_history(run_id, key)
    ]
    frame = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return frame.sort_values(["key", "step"]).reset_index(drop=True)


def run_info(run_id: str) -> dict:
    """Status, parameters, latest metrics and tags of one run."""
    run = _client().get_run(run_id)
    return {
        "run_id": run_id,
        "status": run.info.status,
        "start_time": run.info.start_time,
        "end_time": run.info.end_time,
        "params": dict(run.data.params),
        "metrics": dict(run.data.metrics),
        "tags": dict(run.data.tags),
        "artifact_uri": run.info.artifact_uri,
    }


def mark_run_failed(run_id: str, reason: str) -> None:
    """Close a run that died without ending itself (e.g. its process was killed)."""
    client = _client()
    if client.get_run(run_id).info.status == "RUNNING":
        client.set_tag(run_id, "pneumonet.error", reason[:5000])
        client.set_terminated(run_id, status="FAILED")


def download_artifact(run_id: str, artifact_path: str, destination: str | os.PathLike) -> Path:
    """Copy one artifact of a run into `destination` and return its local path."""
    mlflow = configure()
    Path(destination).mkdir(parents=True, exist_ok=True)
    local = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=artifact_path, dst_path=str(destination)
    )
    return Path(local)


# --- writing a training run -------------------------------------------------------------------


@contextlib.contextmanager
def start_training_run(run_name: str | None = None):
    """Open a run in the experiment; yields its run id and closes it (FAILED on an exception)."""
    mlflow = configure()
    experiment_id = ensure_experiment()
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name) as run:
        yield run.info.run_id


def log_epoch_metrics(metrics: dict[str, float], step: int) -> None:
    """One epoch's metrics in the active run (step = epoch, 1-based)."""
    import mlflow

    mlflow.log_metrics(metrics, step=step)


def log_run_start(params: dict, tags: dict[str, str], skipped: list[tuple[str, str]]) -> None:
    """The run's parameters and tags, and the training images that could not be read."""
    import mlflow

    mlflow.log_params(params)
    mlflow.set_tags(tags)
    if skipped:
        mlflow.log_dict({"skipped": [list(item) for item in skipped]}, "skipped_images.json")


def log_ood_guard(status: str, validation_flag_rate: float | None = None) -> None:
    """Whether the run's OOD statistics were fitted, and their validation flag rate."""
    import mlflow

    mlflow.set_tag("pneumonet.ood_guard", status)
    if validation_flag_rate is not None:
        mlflow.log_metric("ood_validation_flag_rate", validation_flag_rate)


def log_run_end(
    model_path: Path,
    predictions: pd.DataFrame,
    val_metrics: dict,
    *,
    stopped: bool,
    duration_s: float,
    best_epoch: int | None = None,
) -> None:
    """The run's artifacts (model, predictions, metrics, confusion matrix) and final metrics:
    `final_val_*` (the best epoch's model at its chosen threshold) at step `best_epoch`
    (1-based, as the epoch curves), so they sit on the curves' epoch axis."""
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        predictions_path = Path(folder) / "predictions.csv"
        predictions.to_csv(predictions_path, index=False)
        mlflow.log_artifact(str(predictions_path))
    mlflow.log_dict(json.loads(json.dumps(val_metrics)), "metrics.json")
    mlflow.log_dict(val_metrics["confusion_matrix"], "confusion_matrix.json")
    mlflow.log_artifact(str(model_path), artifact_path="model")
    final = {
        f"final_val_{key}": value
        for key, value in val_metrics.items()
        if isinstance(value, float) and math.isfinite(value)
    }
    mlflow.log_metrics(final, step=best_epoch or 0)
    mlflow.log_metric("duration_s", duration_s)
    mlflow.set_tags(
        {
            "pneumonet.model_path": str(model_path),
            "pneumonet.stopped_by_user": str(bool(stopped)).lower(),
        }
    )
