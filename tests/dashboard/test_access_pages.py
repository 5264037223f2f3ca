"""What a visitor sees at a page they may not open, verified e-mail addresses, and one sign-in
entry per sign-in (AppTest, no identity provider: `st.user` is seeded as in `test_auth.py`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_fixtures import HOME_SCRIPT, page_texts
from streamlit.testing.v1 import AppTest

from dashboard import navigation

TIMEOUT_S = 120
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-long-random-cookie-secret-for-tests",
    "client_id": "pneumonet",
    "client_secret": "client-secret-value",
    "server_metadata_url": "http://localhost:9400/.well-known/openid-configuration",
}
ROLES = {"clinician": ["*@hospital.example"], "ml": ["ml-team@hospital.example"]}
SIGN_IN_ON = {"auth": AUTH, "pneumonet": {"roles": ROLES}}
TRUSTING = {"auth": AUTH, "pneumonet": {"roles": ROLES, "auth": {"trust_unverified_email": True}}}
CLINICIAN = "dr.who@hospital.example"
ML = "ml-team@hospital.example"
ML_ONLY = [entry for entry in navigation.PAGES if entry.roles == ("ml",)]


@pytest.fixture(autouse=True)
def home(monkeypatch, tmp_path) -> Path:
    """A temporary PNEUMONET_HOME; no model (so no TensorFlow) and no dataset."""
    monkeypatch.setenv("PNEUMONET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PNEUMONET_MODEL", str(tmp_path / "no-model.keras"))
    monkeypatch.setenv("PNEUMONET_DATA", str(tmp_path / "no-data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def run_app(user: dict, secrets: dict, url_path: str | None = None) -> AppTest:
    """Run the app as `user`, then open `url_path` (a page's URL, e.g. "train") when given."""
    app = AppTest.from_file(str(HOME_SCRIPT), default_timeout=TIMEOUT_S)
    app.secrets.update(secrets)
    app.user = user
    app.run()
    if url_path is not None:
        registered = app._registered_pages.items()  # noqa: SLF001  (AppTest opens files only)
        (page_hash,) = [key for key, info in registered if info.get("url_pathname") == url_path]
        app._page_hash = page_hash  # noqa: SLF001  (what a browser at /<url_path> asks for)
        app.run()
    assert not app.exception, app.exception
    return app


def signed_in(email: str, **claims) -> dict:
    return {"is_logged_in": True, "email": email, **claims}


def texts(app: AppTest) -> str:
    return page_texts(app, ("title", "subheader", "markdown", "caption", "info", "warning"))


@pytest.mark.parametrize("entry", ML_ONLY, ids=lambda entry: entry.key)
def test_a_clinician_at_an_ml_page_is_told_it_needs_ml_with_the_way_back(entry):
    app = run_app(signed_in(CLINICIAN, email_verified=True), SIGN_IN_ON, entry.key)
    shown = texts(app)
    assert f"The {entry.title} page needs the role `ml`" in shown
    assert CLINICIAN in shown and "`clinician`" in shown
    assert [link.proto.label for link in app.get("page_link")] == ["Back to Home"]
    assert [button.label for button in app.main.button] == []
    assert not app.text_input and not app.dataframe
    assert "Start training" not in shown and "Active model" not in shown


@pytest.mark.parametrize("url_path", ["predict", "train", "audit"])
def test_a_visitor_at_any_page_is_asked_to_sign_in_without_the_page_named(url_path):
    app = run_app({"is_logged_in": False}, SIGN_IN_ON, url_path)
    shown = texts(app)
    assert "This page needs sign-in." in shown
    assert [button.label for button in app.button] == ["Sign in"]
    titles = {entry.title for entry in navigation.PAGES if entry.key == url_path}
    assert not any(title in shown for title in titles)
    assert not app.get("page_link") and not app.sidebar.children


def test_a_user_without_a_role_at_a_page_gets_the_no_access_page():
    visitor = signed_in("visitor@elsewhere.example", email_verified=True)
    app = run_app(visitor, SIGN_IN_ON, "predict")
    shown = texts(app)
    assert "No access" in shown and "has no role in PneumoNet" in shown
    assert not app.file_uploader


def test_an_address_without_email_verified_gets_no_role_by_default():
    app = run_app(signed_in(ML), SIGN_IN_ON)
    assert "has not verified this e-mail address" in texts(app)
    assert not app.get("page_link")


def test_trust_unverified_email_gives_the_role_and_the_audit_page_says_so():
    from pneumonet_core.governance import audit

    app = run_app(signed_in(ML), TRUSTING, "audit")
    assert "trusts e-mail addresses the provider does not mark verified" in texts(app)
    (entry,) = audit.read_entries(action="sign_in")
    assert entry["details"]["email_verified"] is False
    assert entry["details"]["trust_unverified_email"] is True


def test_the_audit_page_says_only_verified_addresses_get_a_role_by_default():
    app = run_app(signed_in(ML, email_verified=True), SIGN_IN_ON, "audit")
    assert "only to e-mail addresses the provider marks verified" in texts(app)


def test_one_sign_in_is_recorded_once_however_many_pages_are_loaded():
    from pneumonet_core.governance import audit

    token = {"sub": "clinician-1", "iat": 1_700_000_000, "nonce": "abc", "email_verified": True}
    for url_path in (None, "predict", "evaluate"):  # each page load is a new session
        run_app(signed_in(CLINICIAN, **token), SIGN_IN_ON, url_path)
    assert len(audit.read_entries(action="sign_in")) == 1
    run_app(signed_in(CLINICIAN, **{**token, "iat": 1_700_009_000}), SIGN_IN_ON)  # signed in again
    assert len(audit.read_entries(action="sign_in")) == 2
