"""Recorded training runs: the run table, metric histories, run names and the models runs saved.

MLflow is imported lazily, through `governance.tracking`, and only when a run store exists.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from pneumonet_core.utils import config

KEY_RUN_METRICS = (
    "final_val_roc_auc",
    "final_val_sensitivity",
    "final_val_specificity",
    "final_val_accuracy",
    "final_val_threshold",
    "val_auc",
    "val_loss",
)
KEY_RUN_PARAMS = (
    "architecture",
    "epochs",
    "image_size",
    "batch_size",
    "learning_rate",
    "seed",
    "augmentation.enabled",
    "train_images",
    "val_images",
)
MODEL_PATH_TAG = "tags.pneumonet.model_path"
# Readable column names. The `final_val_*` figures are the validation split's, for the best
# epoch's model at its chosen threshold; `val_auc` and `val_loss` are the last epoch's.
COLUMN_LABELS = {
    "final_val_roc_auc": "ROC-AUC",
    "final_val_sensitivity": "sensitivity",
    "final_val_specificity": "specificity",
    "final_val_accuracy": "accuracy",
    "final_val_threshold": "threshold",
    "val_auc": "last epoch val AUC",
    "val_loss": "last epoch val loss",
    "augmentation.enabled": "augmentation",
}
# The columns shown on the page (the rest are in the CSV download and the expander), so the
# table fits a 1280-px window.
SUMMARY_COLUMNS = (
    "run",
    "status",
    "started",
    "duration (s)",
    "ROC-AUC",
    "sensitivity",
    "specificity",
    "threshold",
    "architecture",
    "epochs",
    "image size",
)
FIGURES_NOTE = (
    "ROC-AUC, sensitivity, specificity and accuracy are the validation split's, for the best "
    "epoch's model at its chosen threshold (as the model file and the Train page's summary); "
    "'last epoch' columns are the curves' last point."
)
RUN_COLUMN_CONFIG = {"run id": st.column_config.TextColumn("run id", width="small")}


def tracking_uri() -> str:
    """The MLflow tracking URI the runs are recorded in."""
    return config.tracking_uri()


def mlflow_ui_command() -> str:
    """The shell command that opens the same run store in the MLflow UI."""
    return f'mlflow ui --backend-store-uri "{config.tracking_uri()}"'


def tracking_store_exists() -> bool:
    """Whether runs may have been recorded (False for a SQLite store not created yet)."""
    uri = config.tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri.removeprefix("sqlite:///")).is_file()
    return True


def run_label(row: pd.Series) -> str:
    """A run's display name: its MLflow run name, else the first 8 characters of its id."""
    name = row.get("tags.mlflow.runName")
    return str(name) if isinstance(name, str) and name else str(row["run_id"])[:8]


def runs_table() -> pd.DataFrame:
    """Every recorded run, newest first, ready to show.

    Returns:
        Columns `run, status, started, duration (s)`, the metrics, then the parameters (named
        by `column_label`), and `run id`. Empty when nothing has been recorded yet.
    """
    if not tracking_store_exists():
        return pd.DataFrame()
    from pneumonet_core.governance import tracking

    runs = tracking.list_runs()
    if runs.empty:
        return pd.DataFrame()
    table = pd.DataFrame(
        {
            "run": runs.apply(run_label, axis=1),
            "status": runs.apply(_run_status, axis=1),
            "started": pd.to_datetime(runs["start_time"]).dt.strftime("%Y-%m-%d %H:%M"),
            "duration (s)": runs.get("duration_s", pd.Series(dtype=float)).round(0),
        }
    )
    metric_columns = _ordered(runs.columns, "metrics.", KEY_RUN_METRICS)
    param_columns = _ordered(runs.columns, "params.", KEY_RUN_PARAMS)
    for column in metric_columns:
        table[column_label(column.removeprefix("metrics."))] = runs[column].round(4)
    for column in param_columns:
        name = column_label(column.removeprefix("params."))
        table[name if name not in table.columns else f"{name} (setting)"] = runs[column]
    error_column = "tags.pneumonet.error"
    if error_column in runs.columns:
        table["error"] = runs[error_column].fillna("")
    table["run id"] = runs["run_id"]
    return table.reset_index(drop=True)


def column_label(name: str) -> str:
    """A metric's or parameter's column name: `COLUMN_LABELS`, else spaced ("image size")."""
    return COLUMN_LABELS.get(name, name.replace("_", " ").replace(".", " "))


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """The `runs_table` columns shown on the page (`SUMMARY_COLUMNS` that are present)."""
    return table[[column for column in SUMMARY_COLUMNS if column in table.columns]]


def _ordered(columns: pd.Index, prefix: str, first: tuple[str, ...]) -> list[str]:
    """Columns with a prefix: the key ones in the given order, then the rest alphabetically."""
    present = [column for column in columns if column.startswith(prefix)]
    key = [prefix + name for name in first if prefix + name in present]
    return key + sorted(set(present) - set(key))


def _run_status(row: pd.Series) -> str:
    if str(row.get("tags.pneumonet.stopped_by_user", "")).lower() == "true":
        return "STOPPED"
    return str(row["status"])


def run_history(run_id: str) -> pd.DataFrame:
    """Every logged metric value of a run: columns `key, step, value, timestamp`.

    Args:
        run_id: The MLflow run id.

    Returns:
        The history (empty when nothing is recorded yet).
    """
    from pneumonet_core.governance import tracking

    return tracking.metric_history(run_id)


@st.cache_data(show_spinner=False, max_entries=64)
def mlflow_run_name(run_id: str) -> str | None:
    """The name MLflow shows for a run (looked up once per run id), or None when it has none."""
    from pneumonet_core.governance import tracking

    return tracking.run_info(run_id)["tags"].get("mlflow.runName")


def saved_models() -> dict[str, str]:
    """The model files that recorded runs saved and that still exist.

    Returns:
        Display label ("Run calm-owl-12 (finished, 2025-01-31 14:02)") to `.keras` path, newest
        run first.
    """
    runs = _runs_with_models()
    if runs is None:
        return {}
    models = {}
    for _, row in runs.iterrows():
        path = row.get(MODEL_PATH_TAG)
        if isinstance(path, str) and Path(path).is_file():
            started = pd.to_datetime(row["start_time"]).strftime("%Y-%m-%d %H:%M")
            models[f"Run {run_label(row)} ({row['status'].lower()}, {started})"] = path
    return models


def promotable_runs() -> dict[str, str]:
    """The finished runs (stopped ones included) that logged their model, newest first.

    Returns:
        Display label ("Run calm-owl-12 (2025-01-31 14:02)") to run id;
        `governance.registry.promote` takes the run id and registers that run's own model
        (the copy logged in the run, whatever has since been written to its output path).
    """
    runs = _runs_with_models()
    if runs is None:
        return {}
    choices = {}
    for _, row in runs[(runs["status"] == "FINISHED") & runs[MODEL_PATH_TAG].notna()].iterrows():
        started = pd.to_datetime(row["start_time"]).strftime("%Y-%m-%d %H:%M")
        choices[f"Run {run_label(row)} ({started})"] = str(row["run_id"])
    return choices


def _runs_with_models() -> pd.DataFrame | None:
    """Every recorded run, when some run recorded where it saved its model; else None."""
    if not tracking_store_exists():
        return None
    from pneumonet_core.governance import tracking

    runs = tracking.list_runs()
    return None if runs.empty or MODEL_PATH_TAG not in runs.columns else runs
