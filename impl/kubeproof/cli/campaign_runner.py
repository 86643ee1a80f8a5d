"""The driver every `kubeproof check` target shares.

A target (`raft` in `check.py`, `kv` in `check_kv.py`, `api` in
`check_api.py`) has a ``prepare(options) -> Campaign`` function: it checks
the flags it uses (bad input raises `click.UsageError` or
`click.BadParameter`, exit 2) and returns a `Campaign`, which knows how to
run a seed range, what its summary table shows beyond the common rows, what
its JSON report holds beyond the common fields, whether a result fails the
command, and what to suggest after the failing seeds.

This module does the rest, once for every target: the seed range
(`seed_range`), flag values parsed by a target's parser (`parsed`), the
node factory (`load_node_factory`), the progress bar, the timing, the table
(title, seeds, violations by invariant), the JSON report (target, seeds,
violations, counters, failures), one line per failing seed, and the exit
status (`drive`).  Given several campaigns (`kubeproof check all`), it runs
them in turn, prints each one's report, then a summary with one row per
target; the exit status is the worst of theirs.
"""

from __future__ import annotations

import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Generic, Literal, Protocol, TypeVar, cast

import click
from attrs import frozen
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from kubeproof.sim.config import SimConfig
from kubeproof.sim.observe import Violation

DEFAULT_SEEDS = "0..9"

_SEEDS = re.compile(r"^\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?$")

T = TypeVar("T")


def parse_seeds(text: str) -> range:
    """'A..B' (inclusive) or 'N' -> the seeds; anything else raises click.BadParameter."""
    m = _SEEDS.match(text)
    if m is None:
        raise click.BadParameter(
            f"{text!r} is not a seed range; write A..B (inclusive, e.g. 0..199) or one seed N",
            param_hint="--seeds",
        )
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) is not None else lo
    if hi < lo:
        raise click.BadParameter(
            f"{text!r} is empty: the first seed must not exceed the last", param_hint="--seeds"
        )
    return range(lo, hi + 1)


def seed_range(seeds_text: str | None, one_seed: int | None) -> range:
    """The seeds of ``--seeds A..B`` or ``--seed N`` (not both), `DEFAULT_SEEDS` if neither."""
    if seeds_text is not None and one_seed is not None:
        raise click.UsageError("give --seeds A..B or --seed N, not both")
    if one_seed is not None:
        return range(one_seed, one_seed + 1)
    return parse_seeds(seeds_text if seeds_text is not None else DEFAULT_SEEDS)


def parsed(parse: Callable[[str], T], text: str, param_hint: str, errors: type[Exception]) -> T:
    """``parse(text)``, its ``errors`` turned into a click.BadParameter (exit 2) for the flag."""
    try:
        return parse(text)
    except errors as e:
        raise click.BadParameter(str(e), param_hint=param_hint) from None


def load_node_factory(name: str | None, default: T) -> T:
    """The class named by ``--node-factory module:attr`` (``default`` without one)."""
    if name is None:
        return default
    from kubeproof.sim.replay import ReplayError, load_factory

    return cast(T, parsed(load_factory, name, "--node-factory", ReplayError))


# The on/off flags (`--pre-vote/--no-pre-vote`, ...): either form may have been given.
_SWITCHES = frozenset(
    ("pre_vote", "check_quorum", "snapshots", "conf_changes", "transfers", "reads", "swarm")
)


@frozen
class CheckOptions:
    """The flags of `kubeproof check` as click checked them.  ``given`` names the
    ones set on the command line: a target takes its own default for a flag left
    at the command's (`or_default`)."""

    nodes: int = 3
    steps: int = 2000
    faults: str = "all"
    pre_vote: bool = False
    check_quorum: bool = False
    snapshots: bool = True
    conf_changes: bool = True
    transfers: bool = True
    reads: bool = True
    lease_reads: bool = False
    keep_traces: Path | None = None
    save_failures: Path | None = Path("failures")
    swarm: bool = False
    jobs: int = 1
    node_factory: str | None = None
    given: frozenset[str] = frozenset()
    all_targets: bool = False

    def or_default(self, name: Literal["nodes", "steps"], default: int) -> int:
        return cast(int, getattr(self, name)) if name in self.given else default

    def refuse(self, target: str, flags: Iterable[str]) -> None:
        """A flag set on the command line that `target` has no use for is an error,
        not silently ignored (with ``all``, each target takes the flags it has a use
        for; `all_targets` is then set and nothing is refused)."""
        if self.all_targets:
            return
        unused = sorted(f for f in flags if f in self.given)
        if unused:
            names = ", ".join(
                ("--[no-]" if f in _SWITCHES else "--") + f.replace("_", "-") for f in unused
            )
            raise click.UsageError(f"target {target} does not take {names}")


class SeedRun(Protocol):
    """One seed's run, as a campaign reports it while it goes."""

    @property
    def violation(self) -> Violation | None: ...


class Failure(Protocol):
    """A failing seed: its violation and where its trace went."""

    @property
    def seed(self) -> int: ...
    @property
    def violation(self) -> Violation: ...
    @property
    def trace(self) -> Path | None: ...
    @property
    def reproduced(self) -> bool: ...


class Outcome(Protocol):
    """What a campaign returns: the seeds run, summed counters, failing seeds."""

    @property
    def seeds(self) -> list[int]: ...
    @property
    def totals(self) -> dict[str, int]: ...
    @property
    def failures(self) -> Sequence[Failure]: ...
    @property
    def violations(self) -> int: ...
    def by_invariant(self) -> dict[str, int]: ...


R = TypeVar("R", bound=Outcome)


class Campaign(ABC, Generic[R]):
    """One target's campaign, its flags checked; see the module docstring."""

    name: str = ""

    @abstractmethod
    def run(self, seeds: Sequence[int], on_result: Callable[[SeedRun], None]) -> R:
        """Every seed; ``on_result`` after each one, in seed order."""

    @abstractmethod
    def rows(self, result: R, seconds: float) -> Iterable[tuple[str, str]]:
        """The table's rows between the seeds and the violations."""

    @abstractmethod
    def report(self, result: R, seconds: float) -> dict[str, object]:
        """The JSON report's fields beyond the common ones (`json_report`)."""

    def failed(self, result: R) -> bool:
        """Whether the result makes the command exit 1."""
        return result.violations > 0

    def hint(self, result: R) -> str | None:
        """A line printed after the failing seeds (how to look at one)."""
        return None


Counters = Sequence[tuple[str, str | tuple[str, ...]]]
"""Table rows over summed counters: (label, counter) or (label, (counter, ...)) shown as a / b."""


def counter_rows(totals: dict[str, int], rows: Counters) -> list[tuple[str, str]]:
    return [
        (
            label,
            " / ".join(str(totals.get(k, 0)) for k in ((key,) if isinstance(key, str) else key)),
        )
        for label, key in rows
    ]


def faults_text(faults: Iterable[str], swarm: bool = False) -> str:
    text = ",".join(sorted(faults)) or "none"
    return text + (" (swarm: a subset per seed)" if swarm else "")


def sim_rows(config: SimConfig, swarm: bool) -> list[tuple[str, str]]:
    """The rows of a target run over the Raft harness's `SimConfig`."""
    return [
        ("nodes / steps", f"{config.nodes} / {config.steps}"),
        ("faults", faults_text((f.value for f in config.faults), swarm)),
    ]


def sim_report(config: SimConfig, swarm: bool) -> dict[str, object]:
    """The JSON fields of a target run over the Raft harness's `SimConfig`."""
    return {
        "nodes": config.nodes,
        "steps": config.steps,
        "faults": sorted(f.value for f in config.faults),
        "swarm": swarm,
    }


def _seeds_json(seeds: Sequence[int]) -> dict[str, int] | None:
    return {"first": seeds[0], "last": seeds[-1], "count": len(seeds)} if seeds else None


def _seeds_text(seeds: Sequence[int]) -> str:
    return f"{len(seeds)} ({seeds[0]}..{seeds[-1]})" if seeds else "0 (-)"


def json_report(campaign: Campaign[R], result: R, seconds: float) -> dict[str, object]:
    """What ``kubeproof check TARGET --json`` prints."""
    return {
        "target": campaign.name,
        "seeds": _seeds_json(result.seeds),
        **campaign.report(result, seconds),
        "violations": result.violations,
        "violations_by_invariant": result.by_invariant(),
        "counters": result.totals,
        "failures": [
            {
                "seed": f.seed,
                "invariant": f.violation.invariant,
                "step": f.violation.step,
                "message": f.violation.message,
                "trace": str(f.trace) if f.trace is not None else None,
                "reproduced": f.reproduced,
            }
            for f in result.failures
        ],
    }


def summary_table(campaign: Campaign[R], result: R, seconds: float) -> Table:
    table = Table(title=f"kubeproof check {campaign.name}", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_row("seeds", _seeds_text(result.seeds))
    for label, value in campaign.rows(result, seconds):
        table.add_row(label, value)
    by = result.by_invariant()
    if by:
        for inv, n in by.items():
            table.add_row(f"[red]violations {inv}[/red]", f"[red]{n}[/red]")
    else:
        table.add_row("violations", "[green]0[/green]")
    return table


def print_report(campaign: Campaign[R], result: R, seconds: float, out: Console) -> None:
    """The summary table, one line per failing seed, and the campaign's hint."""
    out.print(summary_table(campaign, result, seconds))
    for f in result.failures:
        where = f" -> {f.trace}" if f.trace is not None else ""
        again = "" if f.reproduced else " [yellow](re-run did not reproduce it!)[/yellow]"
        out.print(
            f"[red]seed {f.seed}[/red]: {f.violation.invariant} at step "
            f"{f.violation.step}: {f.violation.message}{where}{again}"
        )
    hint = campaign.hint(result) if result.failures else None
    if hint is not None:
        out.print(hint)


def progress_bar(*columns: ProgressColumn, quiet: bool) -> Progress:
    """A progress display on stderr, shown only on a terminal and unless ``quiet``
    (``--json``); it disappears when done."""
    console = Console(stderr=True)
    return Progress(
        *columns, console=console, transient=True, disable=quiet or not console.is_terminal
    )


def run_with_progress(
    campaign: Campaign[R], seeds: Sequence[int], *, quiet: bool
) -> tuple[R, float]:
    """Runs the campaign under a progress bar (on a terminal, on stderr, unless ``quiet``);
    returns its result and wall time in seconds."""
    progress = progress_bar(
        TextColumn(f"[bold]check {campaign.name}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        quiet=quiet,
    )
    failed = 0

    def on_result(run: SeedRun) -> None:
        nonlocal failed
        if run.violation is not None:
            failed += 1
        status = f"[red]{failed} violation(s)[/red]" if failed else "[green]ok[/green]"
        progress.update(task, advance=1, status=status)

    started = time.perf_counter()
    with progress:
        task = progress.add_task("seeds", total=len(seeds), status="")
        result = campaign.run(seeds, on_result)
    return result, time.perf_counter() - started


@frozen
class _Done:
    name: str
    seeds: list[int]
    violations: int
    code: int
    seconds: float
    report: dict[str, object]


def _run(campaign: Campaign[R], seeds: Sequence[int], as_json: bool) -> _Done:
    result, seconds = run_with_progress(campaign, seeds, quiet=as_json)
    if not as_json:
        print_report(campaign, result, seconds, Console())
    code = 1 if campaign.failed(result) else 0
    report = json_report(campaign, result, seconds)
    return _Done(campaign.name, result.seeds, result.violations, code, seconds, report)


def drive(campaigns: Sequence[Campaign[Any]], seeds: Sequence[int], *, as_json: bool) -> int:
    """Runs the campaigns in turn over the same seeds, prints their reports (and, for
    several, a summary with one row per target); returns the exit status, the worst."""
    done = [_run(c, seeds, as_json) for c in campaigns]
    code = max(d.code for d in done)
    if len(done) == 1:
        if as_json:
            click.echo(json.dumps(done[0].report, sort_keys=True))
        return code
    if as_json:
        whole = {
            "target": "all",
            "seeds": _seeds_json(seeds),
            "violations": sum(d.violations for d in done),
            "exit": code,
            "targets": [d.report for d in done],
        }
        click.echo(json.dumps(whole, sort_keys=True))
        return code
    table = Table(title="kubeproof check all", show_header=True)
    for column in ("target", "seeds", "violations", "exit status", "wall time"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for d in done:
        colour = "red" if d.code else "green"
        table.add_row(
            d.name,
            _seeds_text(d.seeds),
            f"[{colour}]{d.violations}[/{colour}]",
            f"[{colour}]{d.code}[/{colour}]",
            f"{d.seconds:.1f} s",
        )
    Console().print(table)
    return code
