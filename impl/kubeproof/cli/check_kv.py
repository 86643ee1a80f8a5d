"""`kubeproof check kv`: seeded simulations of the replicated store, every invariant checked.

A composition root: it wires the store's simulation (`kubeproof.sim.kv`) to
the spec's checkers (`kubeproof.spec.kv.kv_checkers`: the store's
invariants and every Raft invariant) and to a member class (the real
`kubeproof.etcd.Member`, or a mutant through `kv_campaign(member_factory=...)`
or the hidden ``--node-factory module:attr``).

Flags it shares with `kubeproof check`: ``--seeds A..B`` / ``--seed N``,
``--nodes``, ``--steps`` (events per seed; 6000 unless given), ``--faults``
(loss, dup, reorder, partition, crash; all; none), ``--pre-vote``,
``--check-quorum``, ``--swarm``, ``--jobs``, ``--keep-traces DIR``,
``--save-failures DIR`` (a failing seed is run again with its trace written
there as ``kv-seed-N.jsonl``), ``--json``.  Exit 0 without violations, 1
with, 2 on bad input.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kubeproof.etcd import Member
from kubeproof.sim.campaign import CampaignResult
from kubeproof.sim.config import ConfigError, SimConfig, parse_faults
from kubeproof.sim.kv import KVCheckersFactory, KVRunResult, run_kv_campaign
from kubeproof.sim.kvcluster import MemberFactory
from kubeproof.sim.kvconfig import KVSimConfig

DEFAULT_STEPS = 6000


def kv_checkers_factory() -> KVCheckersFactory:
    """The spec's store checkers (imported here, at the composition root)."""
    from kubeproof.spec.kv import kv_checkers

    return kv_checkers


def kv_campaign(
    seeds: Sequence[int],
    *,
    nodes: int = 3,
    steps: int = DEFAULT_STEPS,
    faults: str = "all",
    member_factory: MemberFactory = Member,
    checkers_factory: KVCheckersFactory | None = None,
    keep_traces: Path | None = None,
    save_failures: Path | None = None,
    jobs: int = 1,
    swarm: bool = False,
    pre_vote: bool = False,
    check_quorum: bool = False,
    **options: object,
) -> CampaignResult:
    """The Python face of `kubeproof check kv` (tests run mutants through it).
    ``options`` are `KVSimConfig` fields (clients, watchers, weights ...)."""
    sim = SimConfig(
        nodes=nodes,
        steps=steps,
        faults=parse_faults(faults),
        pre_vote=pre_vote,
        check_quorum=check_quorum,
    )
    cfg = KVSimConfig(sim=sim, **options)  # type: ignore[arg-type]
    return run_kv_campaign(
        cfg,
        list(seeds),
        checkers_factory=checkers_factory or kv_checkers_factory(),
        member_factory=member_factory,
        keep_traces=keep_traces,
        save_failures=save_failures,
        jobs=jobs,
        swarm=swarm,
    )


ROWS: tuple[tuple[str, str | tuple[str, ...]], ...] = (
    ("events", "events"),
    ("elections / distinct leaders", ("elections", "leaders")),
    ("entries committed", "committed"),
    (
        "messages sent / dropped / duplicated",
        ("messages_sent", "messages_dropped", "messages_duplicated"),
    ),
    ("crashes / restarts / partitions", ("crashes", "restarts", "partitions")),
    ("client operations", "ops"),
    ("  answered / etcd errors / unknown outcome", ("ops_ok", "ops_error", "ops_unknown")),
    ("  attempts / retries", ("attempts", "retries")),
    ("  linearizable / serializable reads", ("reads_linearizable", "reads_serializable")),
    ("  txns / compactions", ("txns", "compactions")),
    ("duplicate copies suppressed (applications)", "duplicates_suppressed"),
    ("leases granted / revoked / expired", ("lease_grants", "lease_revokes", "expiries_applied")),
    ("lease expiries proposed", "expiries_proposed"),
    ("snapshots taken / restored", ("snapshots", "snapshots_restored")),
    (
        "watch streams / events / compaction cancels",
        ("watch_streams", "watch_events", "watch_compacted"),
    ),
    ("highest revision (summed)", "max_revision"),
    (
        "lincheck operations / configurations / unknown",
        ("lincheck_ops", "lincheck_explored", "lincheck_unknown"),
    ),
)


def summary_table(result: CampaignResult, seconds: float) -> Table:
    t = result.totals
    seeds = result.seeds
    table = Table(title="kubeproof check kv", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    span = f"{seeds[0]}..{seeds[-1]}" if seeds else "-"
    table.add_row("seeds", f"{len(seeds)} ({span})")
    table.add_row("nodes / steps", f"{result.config.nodes} / {result.config.steps}")
    faults = ",".join(sorted(f.value for f in result.config.faults)) or "none"
    table.add_row("faults", faults + (" (swarm: a subset per seed)" if result.swarm else ""))
    for label, key in ROWS:
        if isinstance(key, tuple):
            table.add_row(label, " / ".join(str(t.get(k, 0)) for k in key))
        else:
            table.add_row(label, str(t.get(key, 0)))
    table.add_row("wall time", f"{seconds:.1f} s")
    by = result.by_invariant()
    if by:
        for inv, n in by.items():
            table.add_row(f"[red]violations {inv}[/red]", f"[red]{n}[/red]")
    else:
        table.add_row("violations", "[green]0[/green]")
    return table


def json_report(result: CampaignResult, seconds: float) -> dict[str, object]:
    seeds = result.seeds
    return {
        "target": "kv",
        "seeds": {"first": seeds[0], "last": seeds[-1], "count": len(seeds)} if seeds else None,
        "nodes": result.config.nodes,
        "steps": result.config.steps,
        "faults": sorted(f.value for f in result.config.faults),
        "swarm": result.swarm,
        "seconds": round(seconds, 3),
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


def run_cli(
    *,
    seeds: Sequence[int],
    nodes: int,
    steps: int | None,
    faults: str,
    pre_vote: bool,
    check_quorum: bool,
    keep_traces: Path | None,
    save_failures: Path,
    swarm: bool,
    jobs: int,
    as_json: bool,
    node_factory: str | None,
) -> None:
    try:
        fault_set = parse_faults(faults)
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--faults") from None
    try:
        sim = SimConfig(
            nodes=nodes,
            steps=steps if steps is not None else DEFAULT_STEPS,
            faults=fault_set,
            pre_vote=pre_vote,
            check_quorum=check_quorum,
        )
        cfg = KVSimConfig(sim=sim)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    factory: MemberFactory = Member
    if node_factory is not None:
        from kubeproof.sim.replay import ReplayError, load_factory

        try:
            factory = load_factory(node_factory)  # type: ignore[assignment]
        except ReplayError as e:
            raise click.BadParameter(str(e), param_hint="--node-factory") from None
        if not (isinstance(factory, type) and issubclass(factory, Member)):
            raise click.BadParameter(
                f"{node_factory} is not a kubeproof.etcd.Member class", param_hint="--node-factory"
            )
    console = Console(stderr=True)
    show = not as_json and console.is_terminal
    progress = Progress(
        TextColumn("[bold]check kv"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not show,
    )
    failed = 0

    def on_result(run: KVRunResult) -> None:
        nonlocal failed
        if run.violation is not None:
            failed += 1
        status = f"[red]{failed} violation(s)[/red]" if failed else "[green]ok[/green]"
        progress.update(task, advance=1, status=status)

    started = time.perf_counter()
    with progress:
        task = progress.add_task("seeds", total=len(seeds), status="")
        result = run_kv_campaign(
            cfg,
            list(seeds),
            checkers_factory=kv_checkers_factory(),
            member_factory=factory,
            keep_traces=keep_traces,
            save_failures=save_failures,
            on_result=on_result,
            jobs=jobs,
            swarm=swarm,
        )
    seconds = time.perf_counter() - started
    if as_json:
        click.echo(json.dumps(json_report(result, seconds), sort_keys=True))
    else:
        out = Console()
        out.print(summary_table(result, seconds))
        for f in result.failures:
            where = f" -> {f.trace}" if f.trace is not None else ""
            again = "" if f.reproduced else " [yellow](re-run did not reproduce it!)[/yellow]"
            out.print(
                f"[red]seed {f.seed}[/red]: {f.violation.invariant} at step "
                f"{f.violation.step}: {f.violation.message}{where}{again}"
            )
        if result.failures:
            out.print(
                "re-run one seed with: kubeproof check kv --seed N --keep-traces DIR "
                "(KV traces are JSON Lines; see docs/etcd.md)"
            )
    sys.exit(1 if result.violations else 0)
