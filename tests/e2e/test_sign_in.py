"""End-to-end sign-in and roles: the dashboard with `[auth]`, a mock OpenID provider, Chromium.

The provider is `oidc-provider-mock` (a Flask app) on a free port in a thread of this process,
with three predefined users; its login form lists them as buttons, as a hospital's provider
would list accounts. The dashboard is started once for this module with its own
PNEUMONET_HOME and `STREAMLIT_SECRETS_FILES` naming a temporary secrets.toml that holds `[auth]`
(its `redirect_uri` uses Streamlit's `{port}` placeholder, so the dashboard may take any free
port) and `[pneumonet.roles]`. The browser reaches the provider at 127.0.0.1 and the dashboard
at localhost, so the two never share cookies.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
from browser_helpers import save_screenshot, wait_until_idle
from dashboard_fixtures import DATA_ROOT
from pneumonet_testing.concurrent_sessions import start_dashboard, stop_dashboard

from dashboard import navigation

pytestmark = [
    pytest.mark.e2e,
    # oidc-provider-mock imports Authlib's deprecated modules (not PneumoNet's doing).
    pytest.mark.filterwarnings("ignore::authlib.deprecate.AuthlibDeprecationWarning"),
]

CLINICIAN = "dr.who@hospital.example"
ML = "ml-team@hospital.example"
NO_ROLE = "visitor@elsewhere.example"
VIEWPORT = {"width": 1440, "height": 1000}
SECRETS_TOML = """
[auth]
redirect_uri = "http://localhost:{{port}}/oauth2callback"
cookie_secret = "{cookie_secret}"
client_id = "pneumonet-e2e"
client_secret = "{client_secret}"
server_metadata_url = "{provider}/.well-known/openid-configuration"

[pneumonet.roles]
clinician = ["*@hospital.example"]
ml = ["ml-team@hospital.example"]
"""
# Text that only a page past the sign-in can show.
RESTRICTED_TEXTS = ("Active model", "Dataset folder", "Start training", "Training job")


def page_path(entry: navigation.PageEntry) -> str:
    """The URL path `st.navigation` gives a page (`/` for the default page)."""
    return "/" if entry.default else "/" + Path(entry.file).stem


ALL_PATHS = {page_path(entry) for entry in navigation.PAGES}


@pytest.fixture(scope="module")
def oidc_provider() -> Iterator[str]:
    """The mock OpenID provider's base URL (any client ID and secret are accepted)."""
    try:
        import oidc_provider_mock
    except ImportError:
        pytest.fail("oidc-provider-mock is missing: pip install -r requirements.txt")
    users = [
        oidc_provider_mock.User(sub=email, claims={"email": email, "email_verified": True})
        for email in (CLINICIAN, ML, NO_ROLE)
    ]
    with oidc_provider_mock.run_server_in_thread(user_claims=users) as server:
        yield f"http://127.0.0.1:{server.server_port}"


@pytest.fixture(scope="module")
def sign_in_server(
    oidc_provider: str, server_environment: dict[str, str], tmp_path_factory, standalone_browser
) -> Iterator[dict]:
    """The dashboard with sign-in on; yields `{"url", "provider", "home"}`."""
    folder = tmp_path_factory.mktemp("sign_in")
    secrets_file = folder / "secrets.toml"
    secrets_file.write_text(
        SECRETS_TOML.format(
            cookie_secret=secrets.token_hex(32),
            client_secret=secrets.token_hex(16),
            provider=oidc_provider,
        ),
        encoding="utf-8",
    )
    home = folder / "home"
    environment = dict(server_environment)
    environment.update(
        {
            "PNEUMONET_HOME": str(home),
            "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}",
            "STREAMLIT_SECRETS_FILES": str(secrets_file),
        }
    )
    log = open(folder / "server.log", "w")  # noqa: SIM115  (closed below)
    url, process = start_dashboard(environment, log)
    try:
        yield {"url": url, "provider": oidc_provider, "home": home}
    finally:
        stop_dashboard(process)
        log.close()


@pytest.fixture
def tab(standalone_browser) -> Iterator:
    """A fresh browser context (no cookies) and tab."""
    context = standalone_browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def open_app(page, server: dict, path: str = "") -> None:
    page.goto(f"{server['url']}/{path}")
    wait_until_idle(page)


def sign_in(page, server: dict, email: str) -> None:
    """Sign in through the provider's form, back to the dashboard's default page."""
    open_app(page, server)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: url.startswith(f"{server['provider']}/oauth2/authorize"))
    page.get_by_role("button", name=email, exact=True).click()
    page.wait_for_url(lambda url: url.startswith(server["url"]))
    page.get_by_role("button", name="Sign out").first.wait_for()  # in the sidebar or the page
    wait_until_idle(page)


def listed_paths(page) -> set[str]:
    """The URL paths of the pages listed in the sidebar navigation."""
    links = page.get_by_test_id("stSidebarNav").locator("a")
    return {urlparse(href).path or "/" for href in links.evaluate_all("a => a.map(l => l.href)")}


def linked_paths(page) -> set[str]:
    """The dashboard pages any link on the page leads to (a heading's own anchor, `#title` on
    the page itself, leads nowhere else and is left out)."""
    hrefs = page.locator("a[href]").evaluate_all("a => a.map(l => l.href)")
    pages = {urlparse(href).path for href in hrefs if not urlparse(href).fragment}
    return pages & (ALL_PATHS - {"/"})


def signed_in_users(server: dict) -> list[str]:
    """The users of the `sign_in` entries in the dashboard's audit trail."""
    with sqlite3.connect(server["home"] / "audit.sqlite") as connection:
        rows = connection.execute("SELECT user FROM entries WHERE action = 'sign_in'")
        return [user for (user,) in rows]


def assert_sign_in_page_only(page, server: dict, model_name: str) -> None:
    page.get_by_role("button", name="Sign in").wait_for()
    assert "Page not found" not in page.inner_text("body")
    assert page.get_by_test_id("stSidebarNav").count() == 0
    assert not linked_paths(page)
    assert page.locator("input[type='file']").count() == 0
    text = page.inner_text("body")
    for hidden in (*RESTRICTED_TEXTS, model_name, str(DATA_ROOT), str(server["home"])):
        assert hidden not in text, hidden


@pytest.fixture(scope="module")
def model_name(server_environment: dict[str, str]) -> str:
    from pneumonet_core.models import modelio

    return modelio.read_metadata(server_environment["PNEUMONET_MODEL"]).name


def test_a_visitor_sees_only_the_sign_in_page_at_every_url(tab, sign_in_server, model_name):
    for path in ("predict", "train", "runs", "evaluate", ""):
        open_app(tab, sign_in_server, path)
        assert_sign_in_page_only(tab, sign_in_server, model_name)
    save_screenshot(tab, "sign_in")


def test_a_clinician_gets_home_predict_worklist_and_evaluate(tab, sign_in_server):
    sign_in(tab, sign_in_server, CLINICIAN)
    assert listed_paths(tab) == {"/", "/predict", "/worklist", "/evaluate"}
    assert "Active model" in tab.inner_text("body")
    save_screenshot(tab, "home_clinician")
    assert CLINICIAN in tab.get_by_test_id("stSidebar").inner_text()
    assert CLINICIAN in signed_in_users(sign_in_server)
    for refused in ("train", "runs"):
        open_app(tab, sign_in_server, refused)
        text = tab.inner_text("body")
        assert "Dataset folder" not in text and "Start training" not in text
        assert "needs the role ml" in text  # not Streamlit's "Page not found"
        assert "Page not found" not in text
        assert listed_paths(tab) == {"/", "/predict", "/worklist", "/evaluate"}
    open_app(tab, sign_in_server, "predict")
    assert tab.locator("input[type='file']").count() == 1
    # One sign-in, one entry, however many pages were loaded (each load is a new session).
    assert signed_in_users(sign_in_server).count(CLINICIAN) == 1


def test_a_clinician_opening_the_audit_trail_is_refused_with_the_way_back(tab, sign_in_server):
    sign_in(tab, sign_in_server, CLINICIAN)
    open_app(tab, sign_in_server, "audit")
    text = tab.inner_text("body")
    assert "The Audit page needs the role ml" in text and "Page not found" not in text
    assert "Download entries" not in text and "sign_in" not in text  # no entry shown
    tab.get_by_role("link", name="Back to Home").click()
    wait_until_idle(tab)
    assert "Active model" in tab.inner_text("body")


def test_the_ml_team_gets_every_page(tab, sign_in_server):
    sign_in(tab, sign_in_server, ML)
    assert listed_paths(tab) == ALL_PATHS  # Train, Runs, and Audit once it is in PAGES
    assert {"/train", "/runs"} <= listed_paths(tab)
    assert ML in signed_in_users(sign_in_server)
    open_app(tab, sign_in_server, "train")
    assert tab.get_by_role("button", name="Start training").is_enabled()


def test_a_user_without_a_role_gets_the_no_access_page(tab, sign_in_server, model_name):
    sign_in(tab, sign_in_server, NO_ROLE)
    text = tab.inner_text("body")
    assert "No access" in text and NO_ROLE in text
    save_screenshot(tab, "no_access")
    assert tab.get_by_role("button", name="Sign out").is_visible()
    assert tab.get_by_test_id("stSidebarNav").count() == 0
    assert not linked_paths(tab)
    assert model_name not in text and "Active model" not in text
    open_app(tab, sign_in_server, "predict")
    assert "No access" in tab.inner_text("body")
    assert tab.locator("input[type='file']").count() == 0
    assert NO_ROLE in signed_in_users(sign_in_server)


def test_signing_out_leads_back_to_the_sign_in_page(tab, sign_in_server, model_name):
    sign_in(tab, sign_in_server, ML)
    tab.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
    # The provider offers `end_session_endpoint`, so it confirms the end of its session first.
    tab.wait_for_url(lambda url: url.startswith(f"{sign_in_server['provider']}/oauth2/end_session"))
    tab.get_by_role("button", name="End session").click()
    tab.wait_for_url(lambda url: url.startswith(sign_in_server["url"]))
    wait_until_idle(tab)
    assert_sign_in_page_only(tab, sign_in_server, model_name)
    open_app(tab, sign_in_server, "train")
    assert_sign_in_page_only(tab, sign_in_server, model_name)
