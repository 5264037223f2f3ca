"""Foundations every other subpackage may use: where things live, error wording, atomic
files and settings described once on their dataclass fields."""

from pneumonet_core.utils import atomic, config, errors, settings
from pneumonet_core.utils.atomic import write_json_atomically
from pneumonet_core.utils.errors import first_line
from pneumonet_core.utils.settings import Setting, config_from_values, setting, settings_of

__all__ = [
    "Setting",
    "atomic",
    "config",
    "config_from_values",
    "errors",
    "first_line",
    "setting",
    "settings",
    "settings_of",
    "write_json_atomically",
]
