"""Where PneumoNet finds its data, model and run store.

Every location has an environment variable and a documented default, so nothing depends on a
hard-coded absolute path:

| variable              | default                                   |
|-----------------------|-------------------------------------------|
| `PNEUMONET_DATA`      | `<project>/../shared/data/chest_xray`     |
| `PNEUMONET_HOME`      | `<project>/runs` (runs, jobs, registry, audit) |
| `PNEUMONET_MODEL`     | the registry's active version, else the shipped model |
| `MLFLOW_TRACKING_URI` | `sqlite:///<PNEUMONET_HOME>/mlflow.db`    |
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SHIPPED_MODEL_RELATIVE_PATH = Path("assets") / "model" / "pneumonet.keras"
MODEL_CARD_RELATIVE_PATH = Path("assets") / "model" / "model_card.json"


def project_root() -> Path:
    """The folder that holds `pneumonet_core/`, `assets/` and `dashboard/`."""
    return Path(__file__).resolve().parents[2]


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
    """`<PNEUMONET_HOME>/active/model.keras`: where models were promoted before the registry.

    It is `modelio.promote_model`'s default destination, and it is never used to resolve the
    active model: promotion goes through `registry` (`registry.resolve_model`). A file left
    there by an older version is reported (`pneumonet model list`, the Runs page) so that it
    can be registered with `pneumonet model promote`.
    """
    return state_dir() / "active" / "model.keras"


def quiet_tensorflow(verbose: bool = False) -> None:
    """Set TensorFlow's C++ log level; call before TensorFlow is imported.

    Args:
        verbose: Show every log line (level 0) instead of warnings and errors only (level 2).
            A `TF_CPP_MIN_LOG_LEVEL` already set in the environment is left as it is.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if verbose else "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")


def import_tensorflow_quietly() -> None:
    """Import TensorFlow and Keras without their start-up lines reaching the terminal.

    Some start-up notices (oneDNN's "custom operations are on", absl's "All log messages
    before absl::InitializeLog()") are written straight to file descriptor 2 whatever
    `TF_CPP_MIN_LOG_LEVEL` says. They are silenced by pointing that descriptor at the null
    device for the import only (turning oneDNN off would cost speed); PneumoNet's own
    messages and progress bars come later and stay visible. Does nothing when TensorFlow is
    already imported.
    """
    if "tensorflow" in sys.modules:
        return
    quiet_tensorflow()
    with stderr_silenced():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


@contextmanager
def stderr_silenced() -> Iterator[None]:
    """Point file descriptor 2 (C libraries and Python alike) at the null device, then back."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no standard error to silence
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)
