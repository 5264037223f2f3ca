"""Where the PACS is: its DICOMweb root and optional credentials, defined once.

`PNEUMONET_DICOMWEB_URL` (or `[pneumonet.pacs] url` in `.streamlit/secrets.toml`) turns the
worklist on. Credentials: `PNEUMONET_DICOMWEB_TOKEN` (a bearer token) or
`PNEUMONET_DICOMWEB_USER` and `PNEUMONET_DICOMWEB_PASSWORD` (basic), or `token`, `username` and
`password` in the same secrets section. The environment wins over the file. Credentials are
never logged or shown: `repr` hides them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from pneumonet_core.utils import config

SECRETS_SECTION = ("pneumonet", "pacs")
ENVIRONMENT = {
    "url": "PNEUMONET_DICOMWEB_URL",
    "token": "PNEUMONET_DICOMWEB_TOKEN",
    "username": "PNEUMONET_DICOMWEB_USER",
    "password": "PNEUMONET_DICOMWEB_PASSWORD",
}


@dataclass(frozen=True)
class PacsSettings:
    """The DICOMweb root and credentials; `url` is None when the PACS is not configured."""

    url: str | None
    token: str | None = field(default=None, repr=False)
    username: str | None = field(default=None, repr=False)
    password: str | None = field(default=None, repr=False)

    @property
    def configured(self) -> bool:
        return bool(self.url)


def secrets_files() -> list[Path]:
    """The secrets files Streamlit reads, lowest priority first."""
    return [
        Path.home() / ".streamlit" / "secrets.toml",
        config.project_root() / ".streamlit" / "secrets.toml",
    ]


def pacs_settings(url: str | None = None) -> PacsSettings:
    """The PACS settings: `url` if given, else the environment, else the secrets file.

    Raises:
        ValueError: The URL is not an http(s) URL, or a secrets file cannot be parsed.
    """
    values: dict[str, str] = {}
    for path in secrets_files():
        values.update(_secrets_section(path))
    for key, variable in ENVIRONMENT.items():
        if os.environ.get(variable):
            values[key] = os.environ[variable]
    if url:
        values["url"] = url
    chosen = values.get("url") or None
    if chosen and not chosen.startswith(("http://", "https://")):
        raise ValueError(f"the DICOMweb URL must start with http:// or https://, got {chosen!r}")
    return PacsSettings(
        url=chosen.rstrip("/") if chosen else None,
        token=values.get("token") or None,
        username=values.get("username") or None,
        password=values.get("password") or None,
    )


def _secrets_section(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        document = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid TOML ({error})") from None
    section = document
    for key in SECRETS_SECTION:
        section = section.get(key, {}) if isinstance(section, dict) else {}
    if not isinstance(section, dict):
        return {}
    return {key: str(value) for key, value in section.items() if key in ENVIRONMENT}
