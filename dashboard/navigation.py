"""The dashboard's pages: the one list of them, and the sidebar navigation built from it.

Each page's URL path comes from its file name (`views/predict.py` is `/predict`; the default page
is `/`), and its title is the sidebar link's name.

Only the pages the visitor's role may open (`dashboard.auth`) are listed and run. At the URL of
any other page, a hidden stand-in (`dashboard.access_pages`) says why it cannot be opened, with
the way back, instead of Streamlit's "Page not found": before signing in, the sign-in page; for
a signed-in user with no role, the no-access page; for a role that may not open it, "needs the
role ml" and a link to Home. Neither of the first two lists any page in the sidebar.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

from dashboard import access_pages, auth

DASHBOARD_DIR = Path(__file__).resolve().parent


@dataclasses.dataclass(frozen=True)
class PageEntry:
    """One page of the dashboard.

    Attributes:
        key: A short name ("predict").
        file: The page script, relative to the entry script (`dashboard/Home.py`).
        title: The page title and the sidebar link's name.
        icon: A Material icon.
        section: The sidebar group it is listed under.
        default: Whether it is the page opened at `/`.
        roles: The roles that may open it (`dashboard.auth`); with sign-in off, the one local
            user has every role.
    """

    key: str
    file: str
    title: str
    icon: str
    section: str
    default: bool = False
    roles: tuple[str, ...] = ("clinician", "ml")


PAGES = (
    PageEntry("home", "views/home.py", "Home", ":material/home:", "PneumoNet", default=True),
    PageEntry("predict", "views/predict.py", "Predict", ":material/radiology:", "Screening"),
    PageEntry("worklist", "views/worklist.py", "Worklist", ":material/lan:", "Screening"),
    PageEntry("evaluate", "views/evaluate.py", "Evaluate", ":material/analytics:", "Screening"),
    PageEntry(
        "train",
        "views/train.py",
        "Train",
        ":material/model_training:",
        "Model development",
        roles=("ml",),
    ),
    PageEntry(
        "runs", "views/runs.py", "Runs", ":material/table_view:", "Model development", roles=("ml",)
    ),
    PageEntry(
        "audit", "views/audit.py", "Audit", ":material/policy:", "Administration", roles=("ml",)
    ),
)
PAGE_FILES = {entry.key: entry.file for entry in PAGES}

# The pages shown instead of all others: before signing in, and to a user with no role.
SIGN_IN_PAGE = PageEntry(
    "sign_in", "views/sign_in.py", "Sign in", ":material/login:", "", default=True, roles=()
)
NO_ACCESS_PAGE = PageEntry(
    "no_access", "views/no_access.py", "No access", ":material/block:", "", default=True, roles=()
)


def _page(entry: PageEntry) -> st.Page:
    return st.Page(
        DASHBOARD_DIR / entry.file, title=entry.title, icon=entry.icon, default=entry.default
    )


def pages_for(role: str | None) -> list[PageEntry]:
    """The pages a role may open, in `PAGES` order (none for no role)."""
    return [
        entry for entry in PAGES if any(auth.role_allows(role, needed) for needed in entry.roles)
    ]


def may_open(key: str) -> bool:
    """Whether the current user may open the page `key` (e.g. to show a link to it)."""
    return any(entry.key == key for entry in pages_for(auth.current_role()))


def build(current: auth.Access | None = None) -> st.Page:
    """The sidebar navigation, grouped by section (call on every run: `st.Page` needs one).

    Args:
        current: The visitor's access (`auth.access()`, read here when not given).

    Returns:
        The `st.navigation` object; its `run()` runs the page the user is on: one the user's
        role may open, else the stand-in that says why not (`access_pages`).
    """
    current = current or auth.access()
    entries = pages_for(current.role)
    if not entries:
        return st.navigation(_gate_pages(current), position="hidden")
    sections: dict[str, list[st.Page]] = {}
    for entry in entries:
        sections.setdefault(entry.section, []).append(_page(entry))
    home = sections[entries[0].section][0]
    refused = [entry for entry in PAGES if entry not in entries]
    hidden = [_needs_role_page(entry, home) for entry in refused]
    if hidden:
        sections.setdefault(entries[-1].section, []).extend(hidden)
    return st.navigation(sections)


def _gate_pages(current: auth.Access) -> list[st.Page]:
    """The sign-in or no-access page at `/`, and a stand-in of it at every other page's URL."""
    gate = NO_ACCESS_PAGE if current.signed_in else SIGN_IN_PAGE
    render = access_pages.no_access_page if current.signed_in else access_pages.sign_in_page
    stand_ins = [
        st.Page(
            access_pages.gate(render, entry.title if current.signed_in else True),
            title=gate.title,
            url_path=entry.key,
            visibility="hidden",
        )
        for entry in PAGES
        if not entry.default
    ]
    return [_page(gate), *stand_ins]


def _needs_role_page(entry: PageEntry, home: st.Page) -> st.Page:
    """A hidden stand-in at `entry`'s URL saying which role it needs, with a link home."""
    needed = entry.roles[-1] if entry.roles else auth.TOP_ROLE
    return st.Page(
        access_pages.gate(access_pages.needs_role_page, entry.title, needed, home),
        title=entry.title,
        url_path=entry.key,
        visibility="hidden",
    )
