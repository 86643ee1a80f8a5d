"""The `kubeproof` command: a click group; each subcommand lives in its own module.

Every subcommand answers bad input with a clear message and exit status 2
(click's usage errors already exit 2; our own input errors raise
`click.UsageError` or `click.BadParameter`, or call `fail_input`).
"""

from __future__ import annotations

import click

from kubeproof.version import __version__ as _version


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(_version, prog_name="kubeproof")
def cli() -> None:
    """kubeproof: a formally checked Kubernetes control-plane core."""


def _register() -> None:
    # Subcommands register here, one import each, so modules stay independent.
    from . import commands

    for command in commands.all_commands():
        cli.add_command(command)


def main() -> None:
    _register()
    cli(prog_name="kubeproof")
