"""The table of subcommands: (module, attribute) pairs, imported when the CLI starts."""

from __future__ import annotations

import importlib

import click

COMMANDS: tuple[tuple[str, str], ...] = (
    ("kubeproof.cli.check", "command"),
    ("kubeproof.cli.replay", "command"),
    ("kubeproof.cli.prove", "command"),
    ("kubeproof.cli.schedule", "schedule_command"),
    ("kubeproof.cli.lincheck", "command"),
    ("kubeproof.cli.up", "command"),
    ("kubeproof.cli.etcd", "command"),
    ("kubeproof.cli.mc", "command"),
)


def all_commands() -> list[click.Command]:
    out: list[click.Command] = []
    for module, attr in COMMANDS:
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command), (module, attr)
        out.append(command)
    return out
