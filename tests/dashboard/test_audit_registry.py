"""AppTest checks of the audit trail and the model registry in the dashboard: Predict records
each displayed prediction once, the Audit page lists and filters the entries, the Runs page
promotes a run and rolls back, and a site operating point saved on Evaluate reaches Predict.

Real components: an MLflow registry and the audit database in a temporary PNEUMONET_HOME.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from dashboard_fixtures import (
    build_tiny_model,
    open_page,
    page_texts,
    png_bytes,
    write_labelled_folder,
)
from streamlit.testing.v1 import AppTest

from pneumonet_core.governance import audit, audited, promotion, registry
from pneumonet_core.utils import config

ML_USER = "ml@site.example"


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory) -> tuple[Path, Path]:
    """Two different tiny untrained models (64 px; thresholds 0.5 and 0.3)."""
    folder = tmp_path_factory.mktemp("audit_registry_models")
    first = build_tiny_model(folder / "first.keras", name="first-model")
    second = build_tiny_model(folder / "second.keras", threshold=0.3, name="second-model")
    return first, second


@pytest.fixture
def home(monkeypatch, tmp_path) -> Path:
    """A temporary PNEUMONET_HOME with nothing promoted and no PNEUMONET_MODEL."""
    home = tmp_path / "home"
    monkeypatch.setenv("PNEUMONET_HOME", str(home))
    monkeypatch.delenv("PNEUMONET_MODEL", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return home


@pytest.fixture
def gate_data(monkeypatch, tmp_path) -> Path:
    """The configured data root for the promotion gate: noise images in train/ and test/ (a
    tiny untrained model scores them at chance), and no shipped model to compare with."""
    root = tmp_path / "gate_data"
    write_labelled_folder(root / "train", per_class=10)
    write_labelled_folder(root / "test", per_class=6)
    monkeypatch.setenv("PNEUMONET_DATA", str(root))
    monkeypatch.setattr(config, "shipped_model_path", lambda: tmp_path / "no-shipped.keras")
    return root


@pytest.fixture
def labelled_folder(tmp_path, monkeypatch) -> Path:
    """NORMAL/ and PNEUMONIA/, 6 synthetic PNGs each, under the data root Evaluate may read."""
    monkeypatch.setenv("PNEUMONET_DATA", str(tmp_path))
    return write_labelled_folder(tmp_path / "labelled")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def texts(app: AppTest) -> str:
    return page_texts(app)


def upload(app: AppTest, *files: tuple[str, bytes]) -> AppTest:
    app.file_uploader[0].set_value([(name, data, "image/png") for name, data in files]).run()
    assert not app.exception, app.exception
    return app


# --- Predict ---------------------------------------------------------------------------------


def test_a_predict_upload_writes_one_audit_entry(home, monkeypatch, tiny_models):
    model, _ = tiny_models
    monkeypatch.setenv("PNEUMONET_MODEL", str(model))
    image = png_bytes(seed=5)
    app = upload(open_page("predict"), ("doe_jane_chest.png", image))
    assert "(PNEUMONET_MODEL)" in texts(app)

    (entry,) = audit.read_entries()
    assert (entry["action"], entry["source"]) == ("predict", "dashboard:Predict")
    assert entry["user"] == audit.current_user()  # sign-in is off: the operating-system user
    assert entry["image_sha256"] == sha256(image)
    assert entry["model_sha256"] == sha256(model.read_bytes())
    assert entry["model_version"] == "PNEUMONET_MODEL"
    assert entry["threshold"] == 0.5 and entry["label"] in ("NORMAL", "PNEUMONIA")
    probability = next(m for m in app.metric if m.label == "Probability of pneumonia").value
    assert f"{entry['probability']:.1%}" == probability
    assert "doe" not in str(entry) and "jane" not in str(entry)

    app.run()  # a rerun shows the same (cached) prediction: nothing more is recorded
    app.slider[0].set_value(0.8).run()
    assert len(audit.read_entries()) == 1
    upload(app, ("doe_jane_chest.png", image), ("second.png", png_bytes(seed=6)))
    assert [e["image_sha256"] for e in audit.read_entries()] == [
        sha256(image),
        sha256(png_bytes(seed=6)),
    ]


def test_a_failed_audit_write_is_a_one_line_notice_and_the_prediction_stands(
    home, monkeypatch, tiny_models
):
    monkeypatch.setenv("PNEUMONET_MODEL", str(tiny_models[0]))
    (home / audit.AUDIT_FILE_NAME).mkdir(parents=True)  # no database can be opened there
    app = upload(open_page("predict"), ("a.png", png_bytes(seed=1)))
    assert any(m.label == "Probability of pneumonia" for m in app.metric)
    notices = [c.value for c in app.caption if "Audit write failed" in c.value]
    assert len(notices) == 1 and "\n" not in notices[0]


def test_a_failed_prediction_write_is_retried_once_and_never_on_every_rerun(
    home, monkeypatch, tiny_models
):
    monkeypatch.setenv("PNEUMONET_MODEL", str(tiny_models[0]))
    tries = []

    def failing_write(*arguments, **fields):
        tries.append(fields["image_sha256"])
        return audit.AuditResult(False, error="OperationalError: database is locked", attempts=3)

    monkeypatch.setattr(audited, "record_prediction", failing_write)
    app = upload(open_page("predict"), ("a.png", png_bytes(seed=1)))
    for _ in range(3):
        app.run()
    app.slider[0].set_value(0.8).run()

    assert tries == [sha256(png_bytes(seed=1))] * 2  # the first try and one retry
    notices = [c.value for c in app.caption if "Audit write failed" in c.value]
    assert len(notices) == 1 and "database is locked" in notices[0]  # still shown
    upload(app, ("a.png", png_bytes(seed=1)), ("b.png", png_bytes(seed=2)))
    assert tries[2:] == [sha256(png_bytes(seed=2))]  # a new image gets its own tries


def test_a_failed_sign_in_write_is_a_notice_on_the_page(home, monkeypatch, tmp_path):
    from test_auth import CLINICIAN, SIGN_IN_ON, run_home, signed_in

    monkeypatch.setenv("PNEUMONET_MODEL", str(tmp_path / "no-model.keras"))  # no TensorFlow
    (home / audit.AUDIT_FILE_NAME).mkdir(parents=True)  # no database can be opened there

    app = run_home(signed_in(CLINICIAN, email_verified=True), SIGN_IN_ON)

    warnings = [w.value for w in app.warning if "Audit write failed" in w.value]
    assert warnings == [
        "Audit write failed: your sign-in was not recorded in the audit trail "
        "(OperationalError: unable to open database file)."
    ]


def test_predict_shows_and_uses_the_site_operating_point(home, tiny_models, tmp_path):
    model, _ = tiny_models
    registry.promote(model, user=ML_USER)
    evidence = registry.Evidence(
        0.42, 300, "f" * 64, 0.95, 0.8, str(tmp_path), sha256(model.read_bytes())
    )
    registry.set_operating_point(1, 0.42, user=ML_USER, evidence=evidence)

    app = open_page("predict")
    page = texts(app)
    assert "(registry version 1)" in page and "threshold **42%**" in page
    assert f"threshold 0.42, chosen on 300 local images by {ML_USER}, " in page
    upload(app, ("a.png", png_bytes(seed=2)))
    assert list(app.dataframe[0].value["threshold"]) == [0.42]
    (entry,) = audit.read_entries()
    assert (entry["threshold"], entry["model_version"]) == (0.42, "registry version 1")


# --- Evaluate --------------------------------------------------------------------------------


def test_an_ml_user_saves_the_threshold_as_the_site_operating_point(
    home, tiny_models, labelled_folder
):
    registry.promote(tiny_models[0], user=ML_USER)
    app = open_page("evaluate")
    assert "registry version 1" in app.selectbox(key="evaluate_model").value
    app.selectbox(key="evaluate_split").set_value("Another folder…").run()
    app.text_input(key="evaluate_folder").set_value(str(labelled_folder)).run()
    app.select_slider(key="evaluate_per_class").set_value("all").run()  # evidence: every image
    assert "uses the threshold saved in its model file" in texts(app)
    slider = next(s for s in app.slider if s.label.startswith("Decision threshold"))
    slider.set_value(0.37).run()
    app.button(key="save_operating_point").click().run()
    assert not app.exception, app.exception

    point = registry.operating_point(1)
    assert (point.threshold, point.evidence.n_images) == (0.37, 12)
    assert point.saved_by == audit.current_user()
    assert "Saved: threshold 0.37, chosen on 12 local images" in texts(app)
    (entry,) = audit.read_entries(action="set_threshold")
    assert (entry["threshold"], entry["source"]) == (0.37, "dashboard:Evaluate")
    assert entry["details"]["n_images"] == 12

    app.switch_page("views/predict.py").run()
    assert "threshold 0.37, chosen on 12 local images" in texts(app)


def test_a_subset_cannot_be_saved_as_the_site_operating_point(home, tiny_models, labelled_folder):
    registry.promote(tiny_models[0], user=ML_USER)
    app = open_page("evaluate")
    app.selectbox(key="evaluate_split").set_value("Another folder…").run()
    app.text_input(key="evaluate_folder").set_value(str(labelled_folder)).run()
    app.select_slider(key="evaluate_per_class").set_value(25).run()
    assert not any(button.key == "save_operating_point" for button in app.button)
    assert "evaluate on every image of a labelled local folder" in texts(app)


# --- Runs: promotion and rollback ------------------------------------------------------------


def button_keys(app: AppTest) -> set[str]:
    return {button.key for button in app.button}


def table_with(app: AppTest, column: str):
    """The first table on the page that has this column."""
    return next(frame.value for frame in app.dataframe if column in frame.value.columns)


def test_the_runs_page_refuses_a_model_that_did_not_learn_until_a_reason_is_typed(
    home, gate_data, tiny_models, tmp_path
):
    from pneumonet_core.governance import tracking

    first, second = tiny_models
    mlflow = tracking.configure()
    with mlflow.start_run(experiment_id=tracking.ensure_experiment(), run_name="calm-run") as run:
        mlflow.log_artifact(str(first), artifact_path="model")
        mlflow.set_tag("pneumonet.model_path", str(tmp_path / "overwritten-since.keras"))
    app = open_page("runs")
    assert "No model promoted yet" in texts(app)
    choice = app.selectbox(key="promote_run_choice")
    assert choice.value.startswith("Run calm-run (")
    verdict = [element.value for element in app.error if "Promotion gate" in element.value]
    assert verdict and "**did not learn**" in verdict[0] and "below the floor 0.90" in verdict[0]
    figures = table_with(app, "figure")
    assert {"ROC-AUC", "sensitivity", "specificity", "images"} <= set(figures["figure"])
    assert "promote_run" not in button_keys(app)  # no Promote button for a refused model

    app.text_input(key="promote_run_override_reason").set_value("plumbing test").run()
    assert "promote_run" in button_keys(app)
    app.button(key="promote_run").click().run()
    assert not app.exception, app.exception

    active = registry.active_version()
    assert (int(active.version), active.run_id) == (1, run.info.run_id)
    versions = table_with(app, "version")
    assert list(versions["version"]) == [1] and list(versions["active"]) == [True]
    assert list(versions["override reason"]) == ["plumbing test"]

    registry.promote(second, user=ML_USER)
    app.run()
    assert list(table_with(app, "version")["version"]) == [2, 1]
    app.selectbox(key="rollback_version").set_value(1).run()
    app.button(key="rollback").click().run()
    assert not app.exception, app.exception
    assert int(registry.active_version().version) == 1

    promoted, rolled_back = audit.read_entries()
    assert (promoted["action"], promoted["source"]) == ("promote", "dashboard:Runs")
    assert promoted["model_sha256"] == sha256(first.read_bytes())
    assert promoted["details"] == {
        "run_id": run.info.run_id,
        "gate_verdict": promotion.DID_NOT_LEARN,
        "override_reason": "plumbing test",
    }
    assert (rolled_back["action"], rolled_back["model_version"]) == (
        "rollback",
        "registry version 1",
    )


# --- Audit -----------------------------------------------------------------------------------


def test_the_audit_page_lists_and_filters_entries(home, monkeypatch):
    long_ago = dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    with monkeypatch.context() as patch:
        patch.setattr(audit, "_utc_now", lambda: long_ago)
        audit.record("train_start", source="dashboard:Train", user="old@site.example")
    image = "a" * 64
    audit.record("predict", source="dashboard:Predict", user="a@site.example", image_sha256=image)
    audit.record("promote", source="dashboard:Runs", user="b@site.example", model_version="v2")
    audit.record("predict", source="cli:predict", user="b@site.example", probability=0.25)

    app = open_page("audit")
    table = app.dataframe[0].value
    assert list(table["action"]) == ["predict", "promote", "predict"]  # last 30 days, newest first
    assert "id" not in table.columns and "image_sha256" in table.columns
    assert app.get("download_button")

    app.selectbox(key="audit_user").set_value("b@site.example").run()
    assert list(app.dataframe[0].value["source"]) == ["cli:predict", "dashboard:Runs"]
    app.selectbox(key="audit_action").set_value("predict").run()
    assert list(app.dataframe[0].value["probability"]) == [0.25]
    app.selectbox(key="audit_user").set_value("all").run()
    assert len(app.dataframe[0].value) == 2

    app.date_input(key="audit_days").set_value((dt.date(2020, 1, 1), dt.date(2020, 1, 3))).run()
    assert not app.exception, app.exception
    app.selectbox(key="audit_action").set_value("all").run()
    (old,) = app.dataframe[0].value.to_dict("records")
    assert (old["user"], old["action"]) == ("old@site.example", "train_start")


def test_the_audit_page_shows_times_to_the_second_and_the_result_columns_first(home):
    audit.record("predict", source="cli:predict", probability=0.25, label="NORMAL", ood=True)

    table = open_page("audit").dataframe[0].value

    assert list(table.columns[:7]) == [
        "time",
        "user",
        "action",
        "label",
        "probability",
        "threshold",
        "ood",
    ]
    assert dt.datetime.strptime(table["time"][0], "%Y-%m-%d %H:%M:%S")  # no microseconds
    assert (table["label"][0], table["ood"][0]) == ("NORMAL", True)


def test_the_audit_page_says_the_chain_is_intact_and_where_it_breaks(home):
    for version in ("v1", "v2", "v3"):
        audit.record("promote", source="dashboard:Runs", user=ML_USER, model_version=version)

    app = open_page("audit")
    assert app.success[0].value.startswith("audit chain intact through entry 3 (hash ")
    assert not app.error

    with closing(sqlite3.connect(audit.audit_path())) as connection:
        connection.execute("DROP TRIGGER entries_refuse_UPDATE")
        connection.execute("UPDATE entries SET model_version = 'v9' WHERE id = 2")
        connection.commit()
    app = open_page("audit")
    assert [e.value for e in app.error] == [
        "audit chain broken at entry 2: it was edited or replaced "
        "(its content does not match its hash)"
    ]


def test_the_audit_page_says_when_nothing_matches(home):
    app = open_page("audit")
    assert "No entries match these filters." in texts(app)
    assert not app.dataframe


def test_the_audit_page_is_listed_for_the_ml_role():
    from dashboard import navigation

    (entry,) = [entry for entry in navigation.PAGES if entry.key == "audit"]
    assert (entry.file, entry.title, entry.roles) == ("views/audit.py", "Audit", ("ml",))
