"""Who is using the dashboard: sign-in (Streamlit's OpenID Connect) and roles.

Sign-in is off unless `.streamlit/secrets.toml` has Streamlit's `[auth]` section; then the one
local user has every role. (Being built: see issue 11.)
"""

from __future__ import annotations

ROLES = ("clinician", "ml")


def signed_in_email() -> str | None:
    """The verified e-mail of the signed-in user, or None when sign-in is off."""
    return None


def current_role() -> str | None:
    """The user's role ("clinician" or "ml"), or None for a user with no role."""
    return "ml"


def may(role: str) -> bool:
    """Whether the current user holds `role` (an "ml" user may do everything)."""
    return current_role() == "ml" or current_role() == role
