"""Command-line flags generated from dataclasses: one field, one flag, help text in the field."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import field


def option(default, help: str, choices=None, card: bool = True, minimum=None, above=None, needs=None):  # noqa: A002 - mirrors argparse's own name
    """A dataclass field that is also a command-line flag.

    `card`: whether the model card lists it among the hyperparameters (False for run plumbing
    that does not change the model). `minimum` / `above`: the smallest value allowed / the value it
    must exceed (None is always allowed for optional fields), checked by `out_of_range`. `needs`:
    the switch (a bool field) without which this setting means nothing, checked by `unmet_needs`."""
    metadata = {"help": help, "choices": choices, "card": card, "minimum": minimum, "above": above, "needs": needs}
    return field(default=default, metadata=metadata)


def out_of_range(config) -> list[str]:
    """One message per field of a dataclass of options that is below its `minimum` or not above its `above`."""
    problems = []
    for f in dataclasses.fields(config):
        value, least, exclusive_floor = getattr(config, f.name), f.metadata.get("minimum"), f.metadata.get("above")
        for item in value if isinstance(value, (list, tuple)) else [value]:  # a list flag: every entry
            if item is None:
                continue
            if least is not None and item < least:
                problems.append(f"--{f.name} must be >= {least}, got {item}")
            if exclusive_floor is not None and item <= exclusive_floor:
                problems.append(f"--{f.name} must be > {exclusive_floor}, got {item}")
    return problems


def unmet_needs(config) -> list[str]:
    """One message per setting changed from its default while the switch it `needs` is off."""
    return [
        f"--{f.name} needs --{f.metadata['needs']}"
        for f in dataclasses.fields(config)
        if f.metadata.get("needs") and not getattr(config, f.metadata["needs"]) and getattr(config, f.name) != f.default
    ]


def as_values(value) -> tuple:
    """A list flag's value as a tuple: argparse gives a list; in Python (and in older runs'
    train_config.json) a bare number is one value."""
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def as_typed(value):
    """A value as typed after its flag: a list flag's one value as itself, several space-separated."""
    if not isinstance(value, (list, tuple)):
        return value
    return value[0] if len(value) == 1 else " ".join(map(str, value))


def flag_values(config) -> dict:
    """Every field of a dataclass of options as typed after its flag: plain values that experiment
    trackers accept."""
    return {f.name: as_typed(getattr(config, f.name)) for f in dataclasses.fields(config)}


def card_values(config) -> dict:
    """The fields of a dataclass of options that belong on a model card, set ones only, as typed;
    not the settings of a switch left off."""
    on_card = {
        f.name for f in dataclasses.fields(config)
        if f.metadata.get("card") and (f.metadata.get("needs") is None or getattr(config, f.metadata["needs"]))
    }
    return {name: value for name, value in flag_values(config).items() if name in on_card and value is not None}


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends each flag's default to its help, unless the help already says what the default is
    (e.g. "(default: --lr)" for a None that means "the same as --lr")."""

    def _get_help_string(self, action):
        if "(default:" in (action.help or ""):
            return action.help
        if action.nargs == "+" and isinstance(action.default, (list, tuple)):  # as typed: "3 4", not "(3, 4)"
            return f"{action.help} (default: {as_typed(action.default)})"
        return super()._get_help_string(action)


def add_flags(parser: argparse.ArgumentParser, config_class, defaults: dict | None = None) -> None:
    """Add a `--name` flag for every field of `config_class` (bool fields become switches,
    `tuple[int, ...]` ones take one or more values)."""
    hints = typing.get_type_hints(config_class)
    for f in dataclasses.fields(config_class):
        default = (defaults or {}).get(f.name, f.default)
        if hints[f.name] is bool:
            parser.add_argument(f"--{f.name}", action="store_true", help=f.metadata["help"])
            continue
        base = typing.get_args(hints[f.name]) or (hints[f.name],)  # "int | None" -> (int, NoneType)
        several = typing.get_origin(hints[f.name]) is tuple  # "tuple[int, ...]" -> (int, Ellipsis)
        parser.add_argument(
            f"--{f.name}",
            type=next(t for t in base if t is not type(None)),
            nargs="+" if several else None,
            default=default,
            choices=f.metadata["choices"],
            help=f.metadata["help"],
        )
