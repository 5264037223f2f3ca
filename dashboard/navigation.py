"""The dashboard's pages: the one list of them, and the sidebar navigation built from it.

Each page's URL path comes from its file name (`views/predict.py` is `/predict`; the default page
is `/`), and its title is the sidebar link's name.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import streamlit as st

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
)
PAGE_FILES = {entry.key: entry.file for entry in PAGES}


def _page(entry: PageEntry) -> st.Page:
    return st.Page(
        DASHBOARD_DIR / entry.file, title=entry.title, icon=entry.icon, default=entry.default
    )


def build() -> st.Page:
    """The sidebar navigation, grouped by section (call on every run: `st.Page` needs one).

    Returns:
        The `st.navigation` object; its `run()` runs the page the user is on.
    """
    sections: dict[str, list[st.Page]] = {}
    for entry in PAGES:
        sections.setdefault(entry.section, []).append(_page(entry))
    return st.navigation(sections)
