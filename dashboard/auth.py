"""Who is using the dashboard: sign-in (Streamlit's OpenID Connect) and roles.

Sign-in is off unless the secrets file (`.streamlit/secrets.toml`) has Streamlit's `[auth]`
section; while it is off, the one local user (the dashboard listens on `localhost` only) has
every role. With `[auth]`, a visitor signs in with the hospital's OIDC provider (`st.login`)
and gets the role that `[pneumonet.roles]` gives their verified e-mail:

    [pneumonet.roles]
    clinician = ["*@hospital.example"]     # Home, Predict, Evaluate (viewing only)
    ml = ["ml-team@hospital.example"]      # every page and every action

Addresses match case-insensitively; `*@domain` matches every address of that domain. An exact
address wins over a pattern; among matches of the same kind, "ml" wins. A signed-in user
matched by neither list, or whose provider does not say `email_verified: true`, has no role.
For a provider that never sends the claim, an administrator may write
`[pneumonet.auth] trust_unverified_email = true` (the Audit page shows it).

The rules are pure functions of plain mappings (`check_auth_section`, `parse_roles`,
`claimed_email`, `verified_email`, `role_for_email`, `role_allows`); `access` applies them to
`st.secrets` and `st.user`. A malformed `[auth]` or `[pneumonet.roles]` closes the dashboard
(fail closed) with a plain message on the sign-in page.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import logging
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import streamlit as st

LOGGER = logging.getLogger("pneumonet.dashboard")

ROLES = ("clinician", "ml")
TOP_ROLE = "ml"  # may everything
AUTH_KEYS = ("redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url")
URL_KEYS = ("redirect_uri", "server_metadata_url")
CALLBACK_PATH = "/oauth2callback"
ADDRESS_PATTERN = re.compile(r"[^@\s*`]+@[^@\s*`]+")  # "name@hospital.example"
DOMAIN_PATTERN = re.compile(r"\*@[^@\s*`]+")  # "*@hospital.example"
SIGN_IN_RECORDED_KEY = "auth_sign_in_recorded"
AUDIT_SOURCE = "dashboard:Sign in"


class AuthConfigError(ValueError):
    """The secrets file's `[auth]` or `[pneumonet.roles]` section is malformed."""


@dataclasses.dataclass(frozen=True)
class Access:
    """What the current visitor may do.

    Attributes:
        sign_in: Whether sign-in is on (the secrets file has `[auth]`).
        signed_in: Whether the visitor has signed in (False when sign-in is off).
        email: The verified e-mail, lower-case (None when sign-in is off or unverified).
        role: "clinician", "ml" or None (no role, or not signed in); "ml" when sign-in is off.
        account: The e-mail the provider sent, verified or not (`claimed_email`).
        unverified: Whether the address was not accepted as verified.
        problem: Why sign-in cannot work (malformed settings), shown on the sign-in page.
        trusts_unverified: Whether `[pneumonet.auth] trust_unverified_email` is on.
        email_verified: Whether the provider said `email_verified: true`.
        sign_in_key: What identifies this sign-in (the ID token's issue time and nonce), so
            it is recorded once however many pages are loaded; None when unknown.
    """

    sign_in: bool
    signed_in: bool = False
    email: str | None = None
    role: str | None = None
    account: str | None = None
    unverified: bool = False
    problem: str | None = None
    trusts_unverified: bool = False
    email_verified: bool = False
    sign_in_key: str | None = None


SIGN_IN_OFF = Access(sign_in=False, role=TOP_ROLE)


# --- Rules (pure functions) ------------------------------------------------------------------


def check_auth_section(section: Any) -> None:
    """Check Streamlit's `[auth]` section (the default provider's keys), naming no secret.

    Raises:
        AuthConfigError: A key is missing or empty, a URL is not absolute, or `redirect_uri`
            does not end with `/oauth2callback`.
    """
    if not isinstance(section, Mapping):
        raise AuthConfigError("[auth] in the secrets file must be a table of settings")
    missing = [key for key in AUTH_KEYS if not _filled(section.get(key))]
    if missing:
        raise AuthConfigError(f"[auth] in the secrets file lacks {', '.join(missing)}")
    for key in URL_KEYS:
        if not str(section[key]).startswith(("http://", "https://")):
            raise AuthConfigError(f"[auth] {key} must be an absolute http:// or https:// URL")
    if not str(section["redirect_uri"]).rstrip("/").endswith(CALLBACK_PATH):
        raise AuthConfigError(f"[auth] redirect_uri must end with {CALLBACK_PATH}")


def parse_roles(secrets: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The `[pneumonet.roles]` lists, lower-case (no section: nobody has a role).

    Args:
        secrets: The whole secrets mapping.

    Returns:
        Role name to its e-mail addresses and `*@domain` patterns.

    Raises:
        AuthConfigError: An unknown role, a list that is not a list of strings, or an entry that
            is neither an address nor `*@domain` (the message names the bad value).
    """
    section = secrets.get("pneumonet", {})
    if not isinstance(section, Mapping):
        raise AuthConfigError("[pneumonet] in the secrets file must be a table")
    table = section.get("roles", {})
    if not isinstance(table, Mapping):
        raise AuthConfigError(
            '[pneumonet.roles] must be a table such as clinician = ["*@hospital.example"]'
        )
    roles: dict[str, tuple[str, ...]] = {}
    for role, entries in table.items():
        if role not in ROLES:
            raise AuthConfigError(
                f"unknown role {role!r} in [pneumonet.roles]; the roles are {', '.join(ROLES)}"
            )
        if not isinstance(entries, list | tuple):
            raise AuthConfigError(
                f"[pneumonet.roles] {role} must be a list of e-mail addresses or *@domain "
                f"patterns, got {entries!r}"
            )
        roles[role] = tuple(_checked_entry(role, entry) for entry in entries)
    return roles


def verified_email(claims: Mapping[str, Any], *, trust_unverified: bool = False) -> str | None:
    """The `email` claim, lower-case, when the provider says `email_verified: true`.

    Args:
        claims: The signed-in user's claims.
        trust_unverified: Also accept an address whose provider sends no `email_verified`
            claim (`trusts_unverified_email`); one that sends false is never accepted.
    """
    email = claimed_email(claims)
    if email is None:
        return None
    if "email_verified" not in claims:
        return email if trust_unverified else None
    return email if _is_true(claims["email_verified"]) else None


def trusts_unverified_email(secrets: Mapping[str, Any]) -> bool:
    """Whether `[pneumonet.auth] trust_unverified_email = true` is set (default False).

    Raises:
        AuthConfigError: The setting is there but is not true or false.
    """
    section = secrets.get("pneumonet", {})
    table = section.get("auth", {}) if isinstance(section, Mapping) else {}
    if not isinstance(table, Mapping):
        raise AuthConfigError("[pneumonet.auth] in the secrets file must be a table")
    value = table.get("trust_unverified_email", False)
    if not isinstance(value, bool):
        raise AuthConfigError(
            f"[pneumonet.auth] trust_unverified_email must be true or false, got {value!r}"
        )
    return value


def claimed_email(claims: Mapping[str, Any]) -> str | None:
    """The `email` claim, lower-case, verified or not (None when missing or not an address)."""
    email = claims.get("email")
    if not isinstance(email, str) or not ADDRESS_PATTERN.fullmatch(email.strip()):
        return None
    return email.strip().lower()


def role_for_email(email: str | None, roles: Mapping[str, tuple[str, ...]]) -> str | None:
    """The role of a (verified) e-mail: exact addresses first, then `*@domain` patterns.

    Among the matches of the winning kind, "ml" wins over "clinician".
    """
    if not email:
        return None
    email = email.strip().lower()
    domain_pattern = "*@" + email.rpartition("@")[2]
    for wanted in (email, domain_pattern):
        matched = [role for role in ROLES if wanted in roles.get(role, ())]
        if matched:
            return TOP_ROLE if TOP_ROLE in matched else matched[0]
    return None


def role_allows(role: str | None, required: str) -> bool:
    """Whether `role` may do what `required` may ("ml" may everything; None nothing)."""
    return role is not None and role in (TOP_ROLE, required)


def _checked_entry(role: str, entry: Any) -> str:
    text = entry.strip().lower() if isinstance(entry, str) else None
    if text is None or not (ADDRESS_PATTERN.fullmatch(text) or DOMAIN_PATTERN.fullmatch(text)):
        raise AuthConfigError(
            f"[pneumonet.roles] {role}: {entry!r} is neither an e-mail address nor *@domain"
        )
    return text


def _filled(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


# --- The current visitor (Streamlit) ---------------------------------------------------------


def access() -> Access:
    """What the current visitor may do, from the secrets file and `st.user` (never raises)."""
    try:
        secrets = _secrets()
        if "auth" not in secrets:
            return SIGN_IN_OFF
        check_auth_section(secrets["auth"])
        roles = parse_roles(secrets)
        trust_unverified = trusts_unverified_email(secrets)
    except AuthConfigError as error:
        _warn_once(f"Sign-in is closed: {error}")
        return Access(sign_in=True, problem=str(error))
    if importlib.util.find_spec("authlib") is None:
        return Access(sign_in=True, problem="it needs Authlib (pip install -r requirements.txt)")
    claims = _user_claims()
    if not claims.get("is_logged_in"):
        return Access(sign_in=True)
    email = verified_email(claims, trust_unverified=trust_unverified)
    account = claimed_email(claims)
    return Access(
        sign_in=True,
        signed_in=True,
        email=email,
        role=role_for_email(email, roles),
        account=account,
        unverified=email is None and account is not None,
        trusts_unverified=trust_unverified,
        email_verified=_is_true(claims.get("email_verified")),
        sign_in_key=sign_in_key(claims),
    )


def sign_in_key(claims: Mapping[str, Any]) -> str | None:
    """What tells one sign-in from another: the ID token's subject, issue time and nonce.

    Every page load of one sign-in carries the same token, so the same key; None when the
    token has neither an issue time nor a nonce.
    """
    parts = [str(claims.get(name, "")) for name in ("sub", "iat", "nonce")]
    if not (parts[1] or parts[2]):
        return None
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def signed_in_email() -> str | None:
    """The verified e-mail of the signed-in user, or None when sign-in is off."""
    return access().email


def current_role() -> str | None:
    """The user's role ("clinician" or "ml"), or None for a user with no role."""
    return access().role


def may(role: str) -> bool:
    """Whether the current user holds `role` (an "ml" user may do everything)."""
    return role_allows(current_role(), role)


def sign_in() -> None:
    """Send the visitor to the identity provider (Streamlit's `st.login`)."""
    st.login()


def sign_out() -> None:
    """Forget the signed-in user (Streamlit's `st.logout`, which also ends the provider's
    session when it offers `end_session_endpoint`)."""
    st.logout()


def record_sign_in_once(current: Access) -> None:
    """Add a `sign_in` entry to the audit trail once per sign-in (not per page load).

    A sign-in is known by its `sign_in_key` across sessions of this server (every page load is
    a new Streamlit session); without a key, once per session. The entry says whether the
    address was verified and whether unverified addresses are trusted. A failed write is a
    warning on the page.
    """
    if not current.signed_in or st.session_state.get(SIGN_IN_RECORDED_KEY):
        return
    st.session_state[SIGN_IN_RECORDED_KEY] = True
    if current.sign_in_key is not None and not _first_time(current.sign_in_key):
        return
    from pneumonet_core.governance import audit

    details = {
        "role": current.role or "none",
        "email_verified": current.email_verified,
        "trust_unverified_email": current.trusts_unverified,
    }
    try:
        result = audit.record(
            "sign_in", source=AUDIT_SOURCE, user=current.account or "unknown", details=details
        )
        error = None if result.ok else result.error
    except ValueError as refused:  # an e-mail the trail refuses (e.g. with a slash)
        error = f"ValueError: {refused}"
        LOGGER.warning("Could not record the sign-in: %s", refused)
    if error is not None:  # shown on the page the user signed in to
        st.warning(
            f"Audit write failed: your sign-in was not recorded in the audit trail ({error}).",
            icon=":material/warning:",
        )


_RECORDED_SIGN_INS: dict[str, None] = {}  # sign-in keys, oldest first (bounded)
_RECORDED_LOCK = threading.Lock()
MAX_REMEMBERED_SIGN_INS = 10_000


def _first_time(key: str) -> bool:
    """Whether `key` is seen for the first time by this server (then remembers it)."""
    with _RECORDED_LOCK:
        if key in _RECORDED_SIGN_INS:
            return False
        _RECORDED_SIGN_INS[key] = None
        while len(_RECORDED_SIGN_INS) > MAX_REMEMBERED_SIGN_INS:
            del _RECORDED_SIGN_INS[next(iter(_RECORDED_SIGN_INS))]
        return True


def _secrets() -> Mapping[str, Any]:
    """The secrets (empty without a secrets file).

    Raises:
        AuthConfigError: A secrets file exists but cannot be read (e.g. invalid TOML).
    """
    from streamlit import config
    from streamlit.errors import StreamlitSecretNotFoundError

    try:
        return st.secrets.to_dict()
    except StreamlitSecretNotFoundError:
        files = config.get_option("secrets.files") or []
        if any(Path(path).expanduser().exists() for path in files):
            raise AuthConfigError(
                "the secrets file (.streamlit/secrets.toml) cannot be read: check its TOML"
            ) from None
        return {}


@functools.cache
def _warn_once(message: str) -> None:
    """Log a settings problem once per process, not on every page load."""
    LOGGER.warning(message)


def _user_claims() -> dict[str, Any]:
    try:
        return dict(st.user.to_dict())
    except Exception:  # noqa: BLE001  (no user is no access)
        LOGGER.exception("Could not read the signed-in user")
        return {}
