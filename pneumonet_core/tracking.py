"""Run tracking with MLflow: the only module that imports mlflow.

The default store is an embedded SQLite database under `PNEUMONET_HOME`; set
`MLFLOW_TRACKING_URI` to use a tracking server instead.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pandas as pd

from pneumonet_core import config

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
