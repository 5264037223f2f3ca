"""What a visitor sees at a page they may not open: the sign-in page, the no-access page, or a
note that the page needs another role, each with the way back (layout only).

`navigation.build` puts these at the URL of every page the visitor may not open (hidden from
the sidebar), so a link or a typed URL says why instead of Streamlit's "Page not found".
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dashboard import auth, layout, text


def sign_in_page(asked_for_a_page: bool = False) -> None:
    """The sign-in page (no model, data or page names); `asked_for_a_page`: reached at the URL
    of a page, which it then says needs sign-in (without naming it)."""
    st.title("PneumoNet")
    st.subheader("Sign in")
    visitor = auth.access()
    if visitor.problem:
        st.error(f"Sign-in is not available: {visitor.problem}.", icon=":material/error:")
        st.caption(
            "An administrator must correct the secrets file (`.streamlit/secrets.toml`); the "
            "README's section on sign-in and roles shows what it must hold."
        )
    else:
        if asked_for_a_page:
            st.info("This page needs sign-in.", icon=":material/login:")
        st.markdown("Sign in with your hospital account to use PneumoNet.")
        if st.button("Sign in", type="primary", icon=":material/login:", key="sign_in"):
            with layout.guard("start signing in"):
                auth.sign_in()
    st.caption(text.intended_use())


def no_access_page(page_title: str | None = None) -> None:
    """The page of a signed-in user with no role; `page_title`: the page asked for."""
    st.title("PneumoNet")
    st.subheader("No access")
    visitor = auth.access()
    account = f"`{visitor.account}`" if visitor.account else "an account without an e-mail address"
    if page_title:
        st.caption(f"The {page_title} page needs a role in PneumoNet.")
    if visitor.unverified:
        st.warning(
            f"You are signed in as {account}, but your identity provider has not verified this "
            "e-mail address, so PneumoNet gives it no role.",
            icon=":material/block:",
        )
    else:
        st.warning(
            f"You are signed in as {account}, which has no role in PneumoNet.",
            icon=":material/block:",
        )
    st.markdown(
        "Ask the PneumoNet administrator to add your e-mail address to the clinician or ML team "
        "list, or sign out and sign in with another account."
    )
    layout.sign_out_button("no_access_sign_out")


def needs_role_page(page_title: str, role: str, home: st.Page) -> None:
    """What a user whose role may not open a page sees at its URL, with a link back home."""
    st.title(page_title)
    visitor = auth.access()
    who = f" You are signed in as `{visitor.account}`" if visitor.account else ""
    held = f" with the role `{visitor.role}`." if visitor.role else "."
    st.warning(
        f"The {page_title} page needs the role `{role}`.{who}{held if who else ''}",
        icon=":material/block:",
    )
    st.page_link(home, label="Back to Home", icon=":material/home:")


def gate(render: Callable[..., None], *args) -> Callable[[], None]:
    """A page function that calls `render(*args)` (for `st.Page`, which takes no arguments)."""

    def page() -> None:
        render(*args)

    return page
