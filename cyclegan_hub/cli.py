"""Command-line flags generated from dataclasses: one field, one flag, help text in the field."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import field


def option(default, help: str, choices=None):  # noqa: A002 - mirrors argparse's own name
    """A dataclass field that is also a command-line flag."""
    return field(default=default, metadata={"help": help, "choices": choices})


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
