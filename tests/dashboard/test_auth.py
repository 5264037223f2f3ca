"""Sign-in and roles: the matching rules (pure functions) and what each visitor gets (AppTest).

AppTest seeds `st.secrets` (`app.secrets`) and `st.user` (`app.user`), so a signed-in user is
emulated without an identity provider; `tests/e2e/test_sign_in.py` signs in for real.
`AppTest.switch_page` refuses a page that `st.navigation` was not given, which is how a page
absent from a role's navigation is shown to be unreachable.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dashboard_fixtures import HOME_SCRIPT, page_texts
from streamlit.testing.v1 import AppTest

from dashboard import auth, navigation

TIMEOUT_S = 120
AUTH = {
    "redirect_uri": "http://localhost:8501/oauth2callback",
    "cookie_secret": "a-long-random-cookie-secret-for-tests",
    "client_id": "pneumonet",
    "client_secret": "client-secret-value",
    "server_metadata_url": "http://localhost:9400/.well-known/openid-configuration",
}
ROLES = {"clinician": ["*@hospital.example"], "ml": ["ml-team@hospital.example"]}
CLINICIAN = "dr.who@hospital.example"
ML = "ml-team@hospital.example"


# --- Matching rules --------------------------------------------------------------------------


def roles_of(table: dict) -> dict[str, tuple[str, ...]]:
    return auth.parse_roles({"pneumonet": {"roles": table}})


def test_a_domain_pattern_matches_every_address_of_that_domain_only():
    roles = roles_of(ROLES)
    assert auth.role_for_email(CLINICIAN, roles) == "clinician"
    assert auth.role_for_email("nurse@hospital.example", roles) == "clinician"
    assert auth.role_for_email(ML, roles) == "ml"
    assert auth.role_for_email("someone@sub.hospital.example", roles) is None
    assert auth.role_for_email("x@hospital.example.attacker.test", roles) is None
    assert auth.role_for_email("hospital.example@elsewhere.test", roles) is None
    assert auth.role_for_email(None, roles) is None


def test_an_exact_address_wins_over_a_domain_pattern():
    roles = roles_of({"ml": ["*@hospital.example"], "clinician": ["guest@hospital.example"]})
    assert auth.role_for_email("guest@hospital.example", roles) == "clinician"
    assert auth.role_for_email("other@hospital.example", roles) == "ml"


def test_a_user_in_both_lists_gets_ml():
    exact = roles_of({"clinician": [ML], "ml": [ML]})
    assert auth.role_for_email(ML, exact) == "ml"
    patterns = roles_of({"clinician": ["*@hospital.example"], "ml": ["*@hospital.example"]})
    assert auth.role_for_email(CLINICIAN, patterns) == "ml"


def test_addresses_match_whatever_their_case():
    roles = roles_of({"ml": ["ML-Team@Hospital.Example"], "clinician": ["*@HOSPITAL.example"]})
    assert auth.role_for_email("ml-team@hospital.example", roles) == "ml"
    claims = {"email": "Dr.Who@Hospital.EXAMPLE", "email_verified": True}
    assert auth.role_for_email(auth.verified_email(claims), roles) == "clinician"


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        ({"email": ML}, None),  # no email_verified claim: not verified (by default)
        ({"email": ML, "email_verified": True}, ML),
        ({"email": ML, "email_verified": "true"}, ML),
        ({"email": ML, "email_verified": False}, None),
        ({"email": ML, "email_verified": "false"}, None),
        ({"email": ML, "email_verified": None}, None),
        ({"email_verified": True}, None),
        ({"email": "not-an-address", "email_verified": True}, None),
        ({"email": 42}, None),
    ],
)
def test_only_a_verified_email_counts(claims, expected):
    assert auth.verified_email(claims) == expected


def test_trusting_unverified_addresses_accepts_a_missing_claim_never_a_false_one():
    assert auth.verified_email({"email": ML}, trust_unverified=True) == ML
    refused = {"email": ML, "email_verified": False}
    assert auth.verified_email(refused, trust_unverified=True) is None


@pytest.mark.parametrize(
    ("secrets", "expected"),
    [
        ({}, False),
        ({"pneumonet": {"auth": {"trust_unverified_email": True}}}, True),
        ({"pneumonet": {"auth": {"trust_unverified_email": False}}}, False),
    ],
)
def test_trust_unverified_email_is_off_unless_set(secrets, expected):
    assert auth.trusts_unverified_email(secrets) is expected


def test_a_malformed_trust_setting_is_refused_naming_the_value():
    with pytest.raises(ValueError, match="'yes'"):
        auth.trusts_unverified_email({"pneumonet": {"auth": {"trust_unverified_email": "yes"}}})


def test_one_sign_in_has_one_key_across_page_loads_and_another_sign_in_another():
    token = {"sub": "u1", "iat": 1700000000, "nonce": "n1", "email": ML}
    assert auth.sign_in_key(token) == auth.sign_in_key(dict(token))
    assert auth.sign_in_key(token) != auth.sign_in_key({**token, "iat": 1700000900})
    assert auth.sign_in_key({"sub": "u1", "email": ML}) is None


def test_no_roles_section_gives_nobody_a_role():
    assert auth.parse_roles({}) == {}
    assert auth.role_for_email(ML, auth.parse_roles({"pneumonet": {}})) is None


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"admin": [ML]}, "'admin'"),
        ({"ml": ML}, ML),  # a string, not a list
        ({"ml": ["alice"]}, "'alice'"),
        ({"clinician": ["*@"]}, "'*@'"),
        ({"clinician": ["*.hospital.example"]}, "'*.hospital.example'"),
        ({"clinician": ["*@*.hospital.example"]}, "'*@*.hospital.example'"),
        ({"clinician": ["two words@hospital.example"]}, "'two words@hospital.example'"),
        ({"ml": [42]}, "42"),
    ],
)
def test_a_malformed_roles_section_is_refused_naming_the_bad_value(table, named):
    with pytest.raises(ValueError, match="pneumonet.roles") as raised:
        roles_of(table)
    assert named in str(raised.value)


def test_a_roles_section_that_is_not_a_table_is_refused():
    with pytest.raises(ValueError, match=r"\[pneumonet.roles\]"):
        auth.parse_roles({"pneumonet": {"roles": ["ml-team@hospital.example"]}})


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"client_secret": None}, "client_secret"),
        ({"cookie_secret": ""}, "cookie_secret"),
        ({"redirect_uri": "http://localhost:8501/"}, "/oauth2callback"),
        ({"server_metadata_url": "localhost:9400/.well-known"}, "server_metadata_url"),
    ],
)
def test_a_malformed_auth_section_is_refused_without_echoing_secrets(changes, named):
    section = {key: value for key, value in {**AUTH, **changes}.items() if value is not None}
    with pytest.raises(ValueError, match=named) as raised:
        auth.check_auth_section(section)
    assert AUTH["client_secret"] not in str(raised.value)
    assert AUTH["cookie_secret"] not in str(raised.value)


def test_ml_may_everything_clinician_only_its_own_and_no_role_nothing():
    assert auth.role_allows("ml", "clinician") and auth.role_allows("ml", "ml")
    assert auth.role_allows("clinician", "clinician")
    assert not auth.role_allows("clinician", "ml")
    assert not auth.role_allows(None, "clinician")


def test_each_role_is_given_its_pages_only():
    keys = {role: [entry.key for entry in navigation.pages_for(role)] for role in auth.ROLES}
    assert keys["ml"] == [entry.key for entry in navigation.PAGES]
    assert keys["clinician"] == ["home", "predict", "worklist", "evaluate"]
    assert navigation.pages_for(None) == []


# --- What each visitor gets (AppTest) --------------------------------------------------------


@pytest.fixture
def home(monkeypatch, tmp_path) -> Path:
    """A temporary PNEUMONET_HOME; no model (so no TensorFlow) and no dataset."""
    monkeypatch.setenv("PNEUMONET_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PNEUMONET_MODEL", str(tmp_path / "no-model.keras"))
    monkeypatch.setenv("PNEUMONET_DATA", str(tmp_path / "no-data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def run_home(user: dict | None = None, secrets: dict | None = None) -> AppTest:
    """Run the app at `/` as `user` (claims; None: sign-in off) with `secrets`."""
    app = AppTest.from_file(str(HOME_SCRIPT), default_timeout=TIMEOUT_S)
    if secrets is not None:
        app.secrets.update(secrets)
    if user is not None:
        app.user = user
    app.run()
    assert not app.exception, app.exception
    return app


def signed_in(email: str, **claims) -> dict:
    return {"is_logged_in": True, "email": email, **claims}


SIGN_IN_ON = {"auth": AUTH, "pneumonet": {"roles": ROLES}}


def page_is_open(app: AppTest, entry: navigation.PageEntry) -> bool:
    """Whether the run gave `st.navigation` this page (switch_page refuses any other)."""
    try:
        app.switch_page(entry.file)
    except ValueError:
        return False
    return True


def texts(app: AppTest) -> str:
    kinds = ("title", "subheader", "markdown", "caption", "info", "warning", "error")
    return page_texts(app, kinds)


def buttons(app: AppTest) -> list[str]:
    return [button.label for button in app.button]


def test_with_sign_in_off_every_page_is_listed_and_home_says_so(home):
    app = run_home()
    assert "Sign-in is off" in texts(app)
    links = {element.proto.label for element in app.get("page_link")}
    assert {"Predict on X-rays", "Evaluate a model", "Train a model", "All runs"} <= links
    assert "Sign out" not in buttons(app)
    assert all(page_is_open(app, entry) for entry in navigation.PAGES)


def test_a_visitor_gets_the_sign_in_page_alone(home):
    app = run_home({"is_logged_in": False}, SIGN_IN_ON)
    assert buttons(app) == ["Sign in"]
    shown = texts(app)
    assert "Sign-in is off" not in shown and "Active model" not in shown
    assert str(home) not in shown  # no model or data path
    assert not app.get("page_link") and not app.sidebar.children
    assert not any(page_is_open(app, entry) for entry in navigation.PAGES)


def test_a_clinician_gets_home_predict_worklist_and_evaluate_only(home):
    from pneumonet_core.governance import audit

    app = run_home(signed_in(CLINICIAN, email_verified=True), SIGN_IN_ON)
    app.run()  # a rerun of the same session records no second sign-in
    assert "Sign-in is off" not in texts(app)
    open_pages = [entry.key for entry in navigation.PAGES if page_is_open(app, entry)]
    assert open_pages == ["home", "predict", "worklist", "evaluate"]
    links = {element.proto.label for element in app.get("page_link")}
    assert links == {"Predict on X-rays", "Evaluate a model"}
    assert [button.label for button in app.sidebar.button] == ["Sign out"]
    assert CLINICIAN in " ".join(str(caption.value) for caption in app.sidebar.caption)
    entries = audit.read_entries(action="sign_in")
    assert [(entry["user"], entry["source"]) for entry in entries] == [
        (CLINICIAN, "dashboard:Sign in")
    ]
    assert entries[0]["details"] == {
        "role": "clinician",
        "email_verified": True,
        "trust_unverified_email": False,
    }


def test_the_ml_team_gets_every_page(home):
    app = run_home(signed_in(ML, email_verified=True), SIGN_IN_ON)
    assert all(page_is_open(app, entry) for entry in navigation.PAGES)
    links = {element.proto.label for element in app.get("page_link")}
    assert {"Train a model", "All runs"} <= links


@pytest.mark.parametrize(
    ("user", "says"),
    [
        (
            signed_in("visitor@elsewhere.example", email_verified=True),
            "has no role in PneumoNet",
        ),
        (signed_in(ML, email_verified=False), "has not verified this e-mail address"),
    ],
)
def test_a_user_without_a_role_gets_the_no_access_page_with_sign_out(home, user, says):
    app = run_home(user, SIGN_IN_ON)
    shown = texts(app)
    assert "No access" in shown and says in shown
    assert buttons(app) == ["Sign out"]
    assert not app.get("page_link") and not app.sidebar.children
    assert not any(page_is_open(app, entry) for entry in navigation.PAGES)


@pytest.mark.parametrize(
    ("secrets", "named"),
    [
        ({"auth": {**AUTH, "client_id": ""}}, "client_id"),
        ({"auth": AUTH, "pneumonet": {"roles": {"admin": [ML]}}}, "'admin'"),
    ],
)
def test_malformed_sign_in_settings_close_the_dashboard_with_a_plain_message(home, secrets, named):
    app = run_home(signed_in(ML), secrets)
    errors = " ".join(str(element.value) for element in app.error)
    assert "Sign-in is not available" in errors and named in errors
    assert AUTH["client_secret"] not in texts(app)
    assert "Sign in" not in buttons(app)
    assert not any(page_is_open(app, entry) for entry in navigation.PAGES)
