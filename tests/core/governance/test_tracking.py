"""tracking: the MLflow store under PNEUMONET_HOME, run listings, histories and artifacts."""

from __future__ import annotations

import json
import time

import pytest

from pneumonet_core.governance import tracking


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A store with two runs: 'first' (finished, metrics at steps 1-3) and 'second' (running)."""
    home = tmp_path_factory.mktemp("tracking_home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PNEUMONET_HOME", str(home))
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        mlflow = tracking.configure()
        experiment_id = tracking.ensure_experiment()
        with mlflow.start_run(experiment_id=experiment_id, run_name="first") as run:
            for step, (loss, auc) in enumerate([(0.9, 0.6), (0.7, 0.7), (0.5, 0.8)], start=1):
                mlflow.log_metrics({"loss": loss, "val_auc": auc}, step=step)
            mlflow.log_params({"epochs": 3})
            mlflow.log_dict({"tn": 1, "fp": 2, "fn": 3, "tp": 4}, "confusion_matrix.json")
            first = run.info.run_id
        time.sleep(0.01)
        second = mlflow.start_run(experiment_id=experiment_id, run_name="second").info.run_id
        mlflow.end_run(status="RUNNING")  # leave it open, as a killed process would
        mlflow.tracking.MlflowClient().update_run(second, status="RUNNING")
    return {"home": home, "experiment_id": experiment_id, "first": first, "second": second}


@pytest.fixture
def in_store(store, monkeypatch):
    monkeypatch.setenv("PNEUMONET_HOME", str(store["home"]))
    return store


def test_default_store_is_sqlite_under_pneumonet_home(isolated_state):
    mlflow = tracking.configure()
    assert mlflow.get_tracking_uri() == f"sqlite:///{isolated_state / 'mlflow.db'}"


def test_list_runs_is_empty_without_an_experiment(isolated_state):
    assert tracking.list_runs().empty


def test_ensure_experiment_is_idempotent_and_keeps_artifacts_under_home(isolated_state):
    experiment_id = tracking.ensure_experiment()
    assert tracking.ensure_experiment() == experiment_id
    experiment = tracking.configure().get_experiment(experiment_id)
    assert experiment.name == tracking.EXPERIMENT_NAME
    assert experiment.artifact_location == (isolated_state / "artifacts" / "pneumonet").as_uri()


def test_list_runs_is_newest_first_with_durations(in_store):
    runs = tracking.list_runs()
    assert runs["run_id"].tolist() == [in_store["second"], in_store["first"]]
    assert runs["tags.mlflow.runName"].tolist() == ["second", "first"]
    first = runs.set_index("run_id").loc[in_store["first"]]
    assert first["status"] == "FINISHED"
    assert first["duration_s"] >= 0
    assert first["params.epochs"] == "3"


def test_metric_history_lists_every_step_sorted(in_store):
    history = tracking.metric_history(in_store["first"])
    assert list(history.columns) == tracking.HISTORY_COLUMNS
    loss = history[history["key"] == "loss"]
    assert loss["step"].tolist() == [1, 2, 3]
    assert loss["value"].tolist() == pytest.approx([0.9, 0.7, 0.5])
    assert history["key"].tolist() == ["loss"] * 3 + ["val_auc"] * 3


def test_metric_history_of_a_run_without_metrics_is_empty(in_store):
    history = tracking.metric_history(in_store["second"])
    assert history.empty and list(history.columns) == tracking.HISTORY_COLUMNS


def test_run_info_and_download_artifact(in_store, tmp_path):
    info = tracking.run_info(in_store["first"])
    assert info["status"] == "FINISHED"
    assert info["params"] == {"epochs": "3"}
    assert info["metrics"]["loss"] == pytest.approx(0.5)  # the latest value
    local = tracking.download_artifact(in_store["first"], "confusion_matrix.json", tmp_path / "d")
    assert local.parent == tmp_path / "d"
    assert json.loads(local.read_text()) == {"tn": 1, "fp": 2, "fn": 3, "tp": 4}


def test_mark_run_failed_closes_only_running_runs(in_store):
    tracking.mark_run_failed(in_store["first"], "should not change a finished run")
    assert tracking.run_info(in_store["first"])["status"] == "FINISHED"
    tracking.mark_run_failed(in_store["second"], "killed")
    info = tracking.run_info(in_store["second"])
    assert info["status"] == "FAILED"
    assert info["tags"]["pneumonet.error"] == "killed"
    assert info["end_time"] is not None
