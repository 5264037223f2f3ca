"""Command-line options built from a settings dataclass, and the dataclass built back from them.

Every field declared with `settings.setting` becomes one option: its flag, type, default,
choices and help all come from the field, so `pneumonet train` cannot drift from `TrainConfig`.
"""

from __future__ import annotations

import argparse
from typing import Any

from pneumonet_core.utils.settings import Setting, config_from_values, settings_of


def add_setting_options(parser: argparse.ArgumentParser, cls: type) -> None:
    """Add one option per command-line setting of `cls` to `parser`.

    A boolean that defaults to True becomes a `--no-...` switch that turns it off (False, a
    switch that turns it on); a flag without leading dashes becomes an optional positional
    argument; an optional (None-able) setting defaults to None.

    Args:
        parser: The parser (or subcommand parser) to extend.
        cls: A settings dataclass whose fields were declared with `setting`.
    """
    for item in settings_of(cls):
        if item.cli:
            _add_option(parser, item)


def _add_option(parser: argparse.ArgumentParser, item: Setting) -> None:
    if not item.flag.startswith("-"):
        parser.add_argument(
            item.dest, nargs="?", type=item.type, default=item.default, help=item.help
        )
        return
    if item.type is bool:
        action = "store_false" if item.default else "store_true"
        parser.add_argument(
            item.flag, dest=item.dest, action=action, default=item.default, help=item.help
        )
        return
    parser.add_argument(
        item.flag,
        dest=item.dest,
        type=item.type,
        default=item.default,
        choices=item.choices,
        metavar=None if item.choices else item.metavar or _metavar(item.flag),
        help=item.help,
    )


class SettingsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` that shows a default only where it says something.

    Switches, None defaults ("automatic" or "off") and help texts that already name their
    default get no "(default: ...)" suffix.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        if (
            action.default is None
            or isinstance(action.default, bool)
            or "default" in help_text
            or action.default is argparse.SUPPRESS
        ):
            return help_text
        return super()._get_help_string(action)


def _metavar(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_").upper()


def config_from_args(cls: type, args: argparse.Namespace, **overrides: Any):
    """Build `cls` from options added by `add_setting_options`.

    Args:
        cls: The settings dataclass the options were built from.
        args: The parsed command line.
        **overrides: Top-level fields set directly instead of from `args`.

    Returns:
        The (validated) instance; settings not offered on the command line keep their defaults.
    """
    values = {item.path: getattr(args, item.dest) for item in settings_of(cls) if item.cli}
    return config_from_values(cls, values, **overrides)
