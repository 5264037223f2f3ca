"""Settings described once, on the dataclass field itself.

A settings dataclass (`TrainConfig`, `AugmentationConfig`) declares each field with `setting`,
which stores the help text, the allowed choices and the command-line flag in the field's
metadata. The `pneumonet train` parser (`pneumonet_core.cli.settings_options`) and the dashboard's
Train form are built from `settings_of`, so a new setting is added in one place.

No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Iterator
from typing import Any

# A nested settings dataclass (e.g. the augmentation inside `TrainConfig`) names its options
# with this prefix in the parsed command line, so they cannot collide with the outer ones.
PREFIX_KEY = "prefix"


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,  # noqa: A002  (argparse's word)
    choices: tuple | None = None,
    flag: str | None = None,
    metavar: str | None = None,
    cli: bool = True,
    prefix: str | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field that also describes itself as a user-facing setting.

    Args:
        default: The default value.
        help: One line for `--help` and tooltips.
        choices: The allowed values, when there is a fixed set.
        flag: The command-line flag (default: `--field-name`; `--no-...` for a boolean that
            defaults to True). A flag without leading dashes is an optional positional argument.
        metavar: The value's name in `--help`.
        cli: Whether `pneumonet train` offers the setting.
        prefix: For a nested settings dataclass: the prefix of its options' parsed names.
        default_factory: A factory for a mutable default (instead of `default`).

    Returns:
        A `dataclasses.field` carrying the description in its metadata.
    """
    metadata = {"help": help, "choices": choices, "flag": flag, "metavar": metavar, "cli": cli}
    if prefix is not None:
        metadata[PREFIX_KEY] = prefix
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting of a settings dataclass, as read from its field.

    Attributes:
        name: The field name.
        path: Field names from the outer dataclass down, e.g. ("augmentation", "enabled").
        type: The value type: int, float, str or bool.
        optional: Whether None is allowed (None then means "automatic" or "off").
        default: The default value.
        help: One line describing the setting.
        choices: The allowed values, or None for any value of `type`.
        flag: The command-line flag, or a positional argument's name.
        metavar: The value's name in `--help`, or None for argparse's.
        cli: Whether `pneumonet train` offers the setting.
        dest: The setting's attribute name in the parsed command line.
    """

    name: str
    path: tuple[str, ...]
    type: type
    optional: bool
    default: Any
    help: str
    choices: tuple | None
    flag: str
    metavar: str | None
    cli: bool
    dest: str


def settings_of(cls: type, *, path: tuple[str, ...] = (), prefix: str = "") -> Iterator[Setting]:
    """Every setting of a settings dataclass, nested settings dataclasses flattened in place.

    Args:
        cls: A dataclass whose fields were declared with `setting`.
        path: The field names leading to `cls` (for nested dataclasses).
        prefix: The parsed-name prefix of `cls`'s options (for nested dataclasses).

    Yields:
        The settings, in field order.

    Raises:
        TypeError: A field was not declared with `setting`.
    """
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if "help" not in field.metadata:
            raise TypeError(f"{cls.__name__}.{field.name} is not declared with setting()")
        value_type, optional = _value_type(hints[field.name])
        if dataclasses.is_dataclass(value_type):
            nested_prefix = field.metadata.get(PREFIX_KEY, field.name)
            yield from settings_of(
                value_type, path=(*path, field.name), prefix=f"{prefix}{nested_prefix}_"
            )
            continue
        yield _setting(field, (*path, field.name), value_type, optional, prefix)


def _setting(field, path, value_type, optional, prefix) -> Setting:
    default = field.default
    if default is dataclasses.MISSING:
        default = field.default_factory()
    flag = field.metadata["flag"]
    if flag is None:
        negated = value_type is bool and default is True
        flag = f"--{'no-' if negated else ''}{field.name.replace('_', '-')}"
    dest = flag.lstrip("-").replace("-", "_")
    return Setting(
        name=field.name,
        path=path,
        type=value_type,
        optional=optional,
        default=default,
        help=field.metadata["help"],
        choices=field.metadata["choices"],
        flag=flag,
        metavar=field.metadata["metavar"],
        cli=field.metadata["cli"],
        dest=f"{prefix}{field.name}" if prefix else dest,
    )


def _value_type(hint) -> tuple[type, bool]:
    """(the type, whether None is allowed) of a field's type hint such as `int | None`."""
    arguments = typing.get_args(hint)
    if not arguments:
        return hint, False
    types = [argument for argument in arguments if argument is not type(None)]
    if len(types) != 1:
        raise TypeError(f"a setting holds one type (or None), not {hint}")
    return types[0], len(types) < len(arguments)


def config_from_values(cls: type, values: dict[tuple[str, ...], Any], **overrides: Any):
    """Build a settings dataclass from values keyed by setting path.

    Args:
        cls: The settings dataclass.
        values: Setting path to value; settings not given keep their defaults.
        **overrides: Top-level fields set directly (win over `values`).

    Returns:
        The (validated) instance.
    """
    nested: dict[str, Any] = {}
    for path, value in values.items():
        target = nested
        for name in path[:-1]:
            target = target.setdefault(name, {})
        target[path[-1]] = value
    return _build(cls, {**nested, **overrides})


def _build(cls: type, values: dict[str, Any]):
    hints = typing.get_type_hints(cls)
    arguments = {}
    for name, value in values.items():
        value_type, _ = _value_type(hints[name])
        if dataclasses.is_dataclass(value_type) and isinstance(value, dict):
            value = _build(value_type, value)
        arguments[name] = value
    return cls(**arguments)
