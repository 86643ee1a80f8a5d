"""The table of subcommands (one line each; the modules import lazily-heavy code)."""

from __future__ import annotations

import click


def all_commands() -> list[click.Command]:
    commands: list[click.Command] = []
    # Each subcommand module exposes one click command; add yours here.
    return commands
