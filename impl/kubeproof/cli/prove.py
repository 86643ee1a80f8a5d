"""`kubeproof prove`: run the Z3 proofs; a table of what is proved and how long it took.

Exit status: 0 when every claim run is proved (and, with ``--teeth``, every
false variant refuted), 1 otherwise, 2 on bad input (an unknown ``--only``
name).  The proofs import Z3, so they are imported only when the command runs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

    from kubeproof.proofs import Proof, Verdict


@click.command("prove")
@click.option(
    "--only",
    "only",
    multiple=True,
    metavar="NAME",
    help="Run only this proof (repeatable). Unknown names are an error listing the known ones.",
)
@click.option(
    "--teeth",
    is_flag=True,
    help="Also run each claim's deliberately false variant, which Z3 must refute.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show each claim in words in the table.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def prove(only: Sequence[str], teeth: bool, verbose: bool, as_json: bool) -> None:
    """Run the Z3 proofs of the quorum and commit rules."""
    from rich.console import Console

    from kubeproof.proofs import FALSE_VARIANTS, PROOFS, Verdict

    unknown = [name for name in only if name not in PROOFS]
    if unknown:
        raise click.BadParameter(
            f"no proof named {', '.join(map(repr, unknown))}; known: {', '.join(PROOFS)}",
            param_hint="--only",
        )
    names = list(dict.fromkeys(only)) if only else list(PROOFS)
    console = Console()
    runs: list[tuple[Proof, Verdict]] = []
    for name in names:
        jobs = [(PROOFS[name], Verdict.PROVED)]
        if teeth:
            jobs.append((FALSE_VARIANTS[name], Verdict.REFUTED))
        for run, expected in jobs:
            if console.is_terminal and not as_json:
                with console.status(f"proving {name} ..."):
                    runs.append((run(), expected))
            else:
                runs.append((run(), expected))
    ok = all(proof.result is expected for proof, expected in runs)
    if as_json:
        click.echo(json.dumps({"ok": ok, "proofs": [_as_json(p, e) for p, e in runs]}, indent=2))
    else:
        _show(console, runs, verbose)
    click.get_current_context().exit(0 if ok else 1)


def _as_json(proof: Proof, expected: Verdict) -> dict[str, object]:
    return {**proof.as_dict(), "expected": expected.value}


def _show(console: Console, runs: Sequence[tuple[Proof, Verdict]], verbose: bool) -> None:
    from rich.table import Table

    table = Table(title="kubeproof prove")
    table.add_column("proof", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("time", justify="right", no_wrap=True)
    table.add_column("claim" if verbose else "checked")
    for proof, expected in runs:
        colour = "green" if proof.result is expected else "red"
        result = proof.result.value if expected.value == "proved" else f"{proof.result.value}*"
        queries = "1 query" if proof.queries == 1 else f"{proof.queries} queries"
        checked = f"{proof.detail}; {queries}"
        if verbose:
            checked = f"{proof.statement}\n[dim]{checked}[/dim]"
        table.add_row(
            proof.name,
            f"[{colour}]{result}[/{colour}]",
            f"{proof.seconds:.2f} s",
            checked,
        )
    console.print(table)
    if any(expected.value == "refuted" for _, expected in runs):
        console.print("* a deliberately false variant: it must be refuted.")
    for proof, _ in runs:
        if proof.counterexample is not None:
            console.print(f"[bold]{proof.name}[/bold] counterexample at {proof.counterexample}")
        elif proof.result.value == "unknown":
            console.print(f"[bold]{proof.name}[/bold] unknown: {proof.detail}")
    total = sum(proof.seconds for proof, _ in runs)
    failed = [p.name for p, expected in runs if p.result is not expected]
    if failed:
        console.print(f"[red]not as expected: {', '.join(failed)}[/red] ({total:.2f} s)")
    else:
        console.print(f"[green]{len(runs)} of {len(runs)} as expected[/green] ({total:.2f} s)")


command = prove
