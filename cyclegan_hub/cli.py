"""Command-line flags generated from dataclasses: one field, one flag, help text in the field."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import field


def option(default, help: str, choices=None, card: bool = True, minimum=None, above=None):  # noqa: A002 - mirrors argparse's own name
    """A dataclass field that is also a command-line flag.

    `card`: whether the model card lists it among the hyperparameters (False for run plumbing
    that does not change the model). `minimum` / `above`: the smallest value allowed / the value it
    must exceed (None is always allowed for optional fields), checked by `out_of_range`."""
    metadata = {"help": help, "choices": choices, "card": card, "minimum": minimum, "above": above}
    return field(default=default, metadata=metadata)


def out_of_range(config) -> list[str]:
    """One message per field of a dataclass of options that is below its `minimum` or not above its `above`."""
    problems = []
    for f in dataclasses.fields(config):
        value, least, exclusive_floor = getattr(config, f.name), f.metadata.get("minimum"), f.metadata.get("above")
        if value is None:
            continue
        if least is not None and value < least:
            problems.append(f"--{f.name} must be >= {least}, got {value}")
        if exclusive_floor is not None and value <= exclusive_floor:
            problems.append(f"--{f.name} must be > {exclusive_floor}, got {value}")
    return problems


def card_values(config) -> dict:
    """The fields of a dataclass of options that belong on a model card, set ones only."""
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config) if f.metadata.get("card") and getattr(config, f.name) is not None}


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each flag's default to its help, unless the help already says what the default is
    (e.g. "(default: --lr)" for a None that means "the same as --lr")."""

    def _get_help_string(self, action):
        return action.help if "(default:" in (action.help or "") else super()._get_help_string(action)


def add_flags(parser: argparse.ArgumentParser, config_class, defaults: dict | None = None) -> None:
    """Add a `--name` flag for every field of `config_class` (bool fields become switches)."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        default = (defaults or {}).get(f.name, f.default)
        if hints[f.name] is bool:
            parser.add_argument(f"--{f.name}", action="store_true", help=f.metadata["help"])
            continue
        base = typing.get_args(hints[f.name]) or (hints[f.name],)  # "int | None" -> (int, NoneType)
        parser.add_argument(
            f"--{f.name}",
            type=next(t for t in base if t is not type(None)),
            default=default,
            choices=f.metadata["choices"],
            help=f.metadata["help"],
        )
