"""Role x action: every action only the ML team may take is refused to a clinician on the
server side (PermissionError, and nothing changes), and no page offers a clinician its button.

The server-side calls stand in for a crafted request: a clinician who reached the function
anyway. The next layer down (the core's job, registry and audit functions) is replaced by a
recorder, so "nothing changes" means it was never called and the audit trail stayed empty; the
same call as the ML team reaches it, which shows the recorder is wired where the action acts.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from dashboard_fixtures import (
    CLINICIAN,
    ML,
    build_tiny_model,
    open_as,
    page_texts,
    write_labelled_folder,
)
from streamlit.testing.v1 import AppTest

from dashboard import audit_log, auth, evaluation_folders, model_registry, training, worklist

ML_ONLY_BUTTONS = (
    "Start training",
    "Stop",
    "Promote to active model",
    "Roll back to it",
    "Save threshold",
    "Download entries (CSV)",
)


@pytest.fixture
def home(monkeypatch, tmp_path) -> Path:
    monkeypatch.setenv("PNEUMONET_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path / "home"


def act_as(monkeypatch, role: str) -> None:
    """Make `auth.access()` say the visitor is signed in with `role`."""
    email = ML if role == "ml" else CLINICIAN
    visitor = auth.Access(
        sign_in=True, signed_in=True, email=email, role=role, account=email, email_verified=True
    )
    monkeypatch.setattr(auth, "access", lambda: visitor)


@pytest.fixture
def recorder(monkeypatch):
    """Replace each function an ml-only action changes state through; record the calls."""
    from pneumonet_core.governance import audited, registry
    from pneumonet_core.training import jobs

    calls: list[str] = []

    def recording(name, result=None):
        def record(*args, **kwargs):
            calls.append(name)
            return result

        return record

    outcome = (SimpleNamespace(run_id=None, version="1"), SimpleNamespace(ok=True, pending=False))
    monkeypatch.setattr(jobs, "start_training_job", recording("start"))
    monkeypatch.setattr(jobs, "request_stop", recording("stop"))
    monkeypatch.setattr(training, "job_summary", lambda: None)
    monkeypatch.setattr(audited, "promote", recording("promote", outcome))
    monkeypatch.setattr(audited, "rollback", recording("rollback", outcome))
    monkeypatch.setattr(audited, "set_operating_point", recording("operating point", outcome))
    monkeypatch.setattr(registry, "compute_evidence", recording("evidence"))
    monkeypatch.setattr(model_registry.cache, "load_predictor", recording("load"))
    monkeypatch.setattr(audit_log.audit, "read_entries", recording("read audit", []))
    monkeypatch.setattr(worklist.PacsWorker, "run_pass", recording("score now"))
    monkeypatch.setattr(worklist, "settings", lambda: None)
    return calls


def _start(tmp_path):
    training.start_training({"data_dir": str(tmp_path), "epochs": 1})


def _operating_point(tmp_path):
    target = SimpleNamespace(path=tmp_path / "m.keras", version="1")
    model_registry.save_operating_point(target, tmp_path, 0.4)


ACTIONS = {
    "start training": (_start, "start"),
    "stop training": (lambda tmp_path: training.stop_training(), "stop"),
    "promote": (lambda tmp_path: model_registry.promote(str(tmp_path / "m.keras")), "promote"),
    "rollback": (lambda tmp_path: model_registry.rollback(1), "rollback"),
    "save operating point": (_operating_point, "operating point"),
    "open Audit": (lambda tmp_path: audit_log.entries_table(), "read audit"),
    "Score now on the Worklist": (lambda tmp_path: worklist.score_now("1.2.3"), "score now"),
}


@pytest.mark.parametrize("action", list(ACTIONS))
def test_a_clinician_is_refused_and_nothing_changes(monkeypatch, home, tmp_path, recorder, action):
    act_as(monkeypatch, "clinician")
    call, _ = ACTIONS[action]
    with pytest.raises(PermissionError, match="Only the ML team"):
        call(tmp_path)
    assert recorder == []
    assert not (home / "audit.sqlite").exists()  # no entry: nothing was done


@pytest.mark.parametrize("action", list(ACTIONS))
def test_the_ml_team_reaches_the_action(monkeypatch, home, tmp_path, recorder, action):
    act_as(monkeypatch, "ml")
    call, reached = ACTIONS[action]
    call(tmp_path)
    assert reached in recorder


def test_a_clinician_may_not_type_an_evaluate_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("PNEUMONET_DATA", str(tmp_path))
    (tmp_path / "site").mkdir()
    act_as(monkeypatch, "clinician")
    with pytest.raises(PermissionError, match="Only the ML team"):
        evaluation_folders.typed_folder(str(tmp_path / "site"))
    act_as(monkeypatch, "ml")
    assert evaluation_folders.typed_folder(str(tmp_path / "site")) == (tmp_path / "site").resolve()


# --- No page offers a clinician an ml-only button (AppTest) ----------------------------------


@pytest.fixture
def app_env(monkeypatch, tmp_path_factory) -> Path:
    """The tiny model as the active model, and a data root holding a labelled test/ folder."""
    folder = tmp_path_factory.mktemp("matrix")
    monkeypatch.setenv("PNEUMONET_HOME", str(folder / "home"))
    monkeypatch.setenv("PNEUMONET_MODEL", str(build_tiny_model(folder / "tiny.keras")))
    monkeypatch.setenv("PNEUMONET_DATA", str(folder / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    write_labelled_folder(folder / "data" / "test")
    return folder


def offered(app: AppTest) -> list[str]:
    """The labels of every button, form button and download button on the page."""
    labels = [button.label for button in app.button]
    labels += [element.proto.label for element in app.get("download_button")]
    return labels


@pytest.mark.parametrize("url_path", ["train", "runs", "audit"])
def test_a_clinician_at_an_ml_page_is_offered_no_ml_action(app_env, url_path):
    clinician = open_as(CLINICIAN, url_path)
    assert not [label for label in offered(clinician) if label.startswith(ML_ONLY_BUTTONS)]
    assert "needs the role `ml`" in page_texts(clinician, ("warning",))
    ml = open_as(ML, url_path)  # the same page as the ML team: the page itself, not the notice
    assert "needs the role `ml`" not in page_texts(ml, ("warning",))


def test_a_clinician_on_evaluate_may_not_type_a_folder_nor_read_every_image(app_env):
    clinician = open_as(CLINICIAN, "evaluate")
    options = clinician.selectbox(key="evaluate_split").options
    assert "Another folder…" not in options and options[0] == "test/ folder"
    assert "all" not in clinician.select_slider(key="evaluate_per_class").options
    assert not [label for label in offered(clinician) if label.startswith(ML_ONLY_BUTTONS)]
    ml = open_as(ML, "evaluate")
    assert "Another folder…" in ml.selectbox(key="evaluate_split").options
