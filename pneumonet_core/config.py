"""Where PneumoNet finds its data, model and run store.

Every location has an environment variable and a documented default, so nothing depends on a
hard-coded absolute path:

| variable              | default                                   |
|-----------------------|-------------------------------------------|
| `PNEUMONET_DATA`      | `<project>/../shared/data/chest_xray`     |
| `PNEUMONET_HOME`      | `<project>/runs` (runs, jobs, promoted model) |
| `PNEUMONET_MODEL`     | promoted model, else the shipped model    |
| `MLFLOW_TRACKING_URI` | `sqlite:///<PNEUMONET_HOME>/mlflow.db`    |
"""

from __future__ import annotations

import os
from pathlib import Path

SHIPPED_MODEL_RELATIVE_PATH = Path("assets") / "model" / "pneumonet.keras"
MODEL_CARD_RELATIVE_PATH = Path("assets") / "model" / "model_card.json"


def project_root() -> Path:
    """The folder that holds `pneumonet_core/`, `assets/` and `dashboard/`."""
    return Path(__file__).resolve().parent.parent


def data_root() -> Path:
    """The dataset root (`train/`, `val/`, `test/` with `NORMAL/` and `PNEUMONIA/`)."""
    configured = os.environ.get("PNEUMONET_DATA")
    if configured:
        return Path(configured).expanduser()
    return project_root().parent / "shared" / "data" / "chest_xray"


def state_dir() -> Path:
    """Folder for run artifacts, the tracking database, job files and promoted models."""
    configured = os.environ.get("PNEUMONET_HOME")
    path = Path(configured).expanduser() if configured else project_root() / "runs"
    return path


def default_model_path(run_name: str = "model") -> Path:
    """Where a training run writes its model when no `--out` is given."""
    return state_dir() / "models" / f"{run_name}.keras"


def tracking_uri() -> str:
    """MLflow tracking URI: `MLFLOW_TRACKING_URI`, else an embedded SQLite store."""
    configured = os.environ.get("MLFLOW_TRACKING_URI")
    if configured:
        return configured
    return f"sqlite:///{state_dir() / 'mlflow.db'}"


def artifact_root() -> Path:
    """Where a local tracking store keeps run artifacts."""
    return state_dir() / "artifacts"


def jobs_dir() -> Path:
    """Where the background training job keeps its lock, status and log files."""
    return state_dir() / "jobs"


def shipped_model_path() -> Path:
    """The model shipped with the project in `assets/model/`."""
    return project_root() / SHIPPED_MODEL_RELATIVE_PATH


def model_card_path() -> Path:
    """The machine-readable model card of the shipped model."""
    return project_root() / MODEL_CARD_RELATIVE_PATH


def promoted_model_path() -> Path:
    """Where a model promoted from the dashboard becomes the active model."""
    return state_dir() / "active" / "model.keras"


def active_model_path() -> Path:
    """The model used when none is named: `PNEUMONET_MODEL`, a promoted one, or the shipped one."""
    configured = os.environ.get("PNEUMONET_MODEL")
    if configured:
        return Path(configured).expanduser()
    promoted = promoted_model_path()
    if promoted.exists():
        return promoted
    return shipped_model_path()


def quiet_tensorflow() -> None:
    """Silence TensorFlow's start-up chatter (call before TensorFlow is imported)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
