"""`kubeproof check TARGET`: a campaign of seeded simulations, every invariant checked.

This is a composition root: it wires the harness (`kubeproof.sim`) to the
spec's checkers (`kubeproof.spec.raft.raft_checkers`) and to a node class
(the real `RaftNode`, or a mutant through the hidden `--node-factory`
option or `raft_campaign(node_factory=...)`).

The Raft campaign runs with every harness feature on by default (snapshots
and compaction, membership changes, leadership transfers, ReadIndex reads;
`FEATURES`); `--no-snapshots`, `--no-conf-changes`, `--no-transfers` and
`--no-reads` turn them off, `--lease-reads` makes reads lease-based (with
`--check-quorum`, as etcd requires).

Exit status: 0 no violation, 1 at least one violation (traces saved),
2 bad input.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kubeproof.raft import RaftNode
from kubeproof.sim.campaign import CampaignResult, CheckersFactory, run_campaign
from kubeproof.sim.config import ConfigError, SimConfig, parse_faults
from kubeproof.sim.harness import RunResult
from kubeproof.sim.member import NodeFactory

TARGETS = ("raft", "kv", "api", "sched", "cluster", "all")
BUILT = ("raft",)
"""Targets that exist now; `all` runs every built one."""

FEATURES: dict[str, bool] = {
    "snapshots": True,
    "conf_changes": True,
    "transfers": True,
    "reads": True,
}
"""The harness features `kubeproof check raft` (and `raft_campaign`) turn on by default."""

_SEEDS = re.compile(r"^\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?$")


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


def raft_checkers_factory() -> CheckersFactory:
    """The spec's Raft checkers (imported here, at the composition root)."""
    from kubeproof.spec.raft import raft_checkers

    return raft_checkers


def raft_campaign(
    seeds: Sequence[int],
    *,
    nodes: int = 3,
    steps: int = 2000,
    faults: str = "all",
    node_factory: NodeFactory = RaftNode,
    checkers_factory: CheckersFactory | None = None,
    keep_traces: Path | None = None,
    save_failures: Path | None = None,
    jobs: int = 1,
    swarm: bool = False,
    **config: object,
) -> CampaignResult:
    """The Python face of `kubeproof check raft` (tests run mutants through it).

    The features of `FEATURES` are on unless a keyword turns one off
    (`reads=False` ...); any other `SimConfig` field may be given too.
    """
    fields = {**FEATURES, **config}
    cfg = SimConfig(nodes=nodes, steps=steps, faults=parse_faults(faults), **fields)  # type: ignore[arg-type]
    return run_campaign(
        cfg,
        list(seeds),
        checkers_factory=checkers_factory or raft_checkers_factory(),
        node_factory=node_factory,
        keep_traces=keep_traces,
        save_failures=save_failures,
        jobs=jobs,
        target="raft",
        swarm=swarm,
    )


def _summary_table(result: CampaignResult) -> Table:
    t = result.totals
    seeds = result.seeds
    table = Table(title=f"kubeproof check {result.target}", show_header=True)
    table.add_column("measure")
    table.add_column("value", justify="right")
    span = f"{seeds[0]}..{seeds[-1]}" if seeds else "-"
    table.add_row("seeds", f"{len(seeds)} ({span})")
    table.add_row("nodes / steps", f"{result.config.nodes} / {result.config.steps}")
    faults = ",".join(sorted(f.value for f in result.config.faults)) or "none"
    table.add_row("faults", faults + (" (swarm: a subset per seed)" if result.swarm else ""))
    cfg = result.config
    on = [
        name
        for name, flag in (
            ("snapshots", cfg.snapshots),
            ("conf-changes", cfg.conf_changes),
            ("transfers", cfg.transfers),
            ("reads", cfg.reads),
            ("lease-reads", cfg.read_only_lease),
            ("pre-vote", cfg.pre_vote),
            ("check-quorum", cfg.check_quorum),
        )
        if flag
    ]
    table.add_row("features", ",".join(on) or "none")
    for label, key in (
        ("events", "events"),
        ("elections", "elections"),
        ("leaders (distinct, summed over seeds)", "leaders"),
        ("entries committed", "committed"),
        ("proposals acknowledged", "proposals_acknowledged"),
        ("messages sent", "messages_sent"),
        ("messages dropped", "messages_dropped"),
        ("crashes", "crashes"),
        ("partitions", "partitions"),
        ("snapshots taken / restored", ("snapshots", "snapshots_restored")),
        ("configuration changes proposed / in force", ("conf_changes", "configurations")),
        ("members joined / stopped", ("members_joined", "members_stopped")),
        ("leadership transfers", "transfers"),
        ("reads asked / served", ("reads", "reads_served")),
    ):
        if isinstance(key, tuple):
            table.add_row(label, " / ".join(str(t.get(k, 0)) for k in key))
        else:
            table.add_row(label, str(t.get(key, 0)))
    by = result.by_invariant()
    if by:
        for inv, n in by.items():
            table.add_row(f"[red]violations {inv}[/red]", f"[red]{n}[/red]")
    else:
        table.add_row("violations", "[green]0[/green]")
    return table


def _json_report(result: CampaignResult) -> dict[str, object]:
    seeds = result.seeds
    return {
        "target": result.target,
        "seeds": {"first": seeds[0], "last": seeds[-1], "count": len(seeds)} if seeds else None,
        "nodes": result.config.nodes,
        "steps": result.config.steps,
        "faults": sorted(f.value for f in result.config.faults),
        "swarm": result.swarm,
        "features": {
            "snapshots": result.config.snapshots,
            "conf_changes": result.config.conf_changes,
            "transfers": result.config.transfers,
            "reads": result.config.reads,
            "lease_reads": result.config.read_only_lease,
            "pre_vote": result.config.pre_vote,
            "check_quorum": result.config.check_quorum,
        },
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


@click.command("check")
@click.argument("target", required=False, default="raft", metavar="[raft|kv|api|sched|cluster|all]")
@click.option("--seeds", "seeds_text", default=None, help="Seed range A..B, inclusive [0..9].")
@click.option("--seed", "one_seed", type=click.IntRange(min=0), default=None, help="One seed.")
@click.option("--nodes", type=click.IntRange(1, 15), default=3, show_default=True)
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option(
    "--faults",
    default="all",
    show_default=True,
    help="Comma list of loss,dup,reorder,partition,crash; or all; or none.",
)
@click.option("--pre-vote/--no-pre-vote", default=False, help="Run Raft with PreVote.")
@click.option("--check-quorum/--no-check-quorum", default=False, help="Run Raft with CheckQuorum.")
@click.option(
    "--snapshots/--no-snapshots",
    default=True,
    show_default=True,
    help="Members snapshot their state and compact their logs; laggards catch up by MsgSnap.",
)
@click.option(
    "--conf-changes/--no-conf-changes",
    default=True,
    show_default=True,
    help="The leader proposes membership changes (add, remove, learners, joint).",
)
@click.option(
    "--transfers/--no-transfers",
    default=True,
    show_default=True,
    help="Leadership transfers, some of which time out.",
)
@click.option(
    "--reads/--no-reads",
    default=True,
    show_default=True,
    help="Clients ask linearizable ReadIndex reads.",
)
@click.option(
    "--lease-reads",
    is_flag=True,
    help="Reads are lease-based (ReadOnlyLeaseBased); needs --check-quorum.",
)
@click.option(
    "--keep-traces",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write every run's trace into DIR.",
)
@click.option(
    "--save-failures",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("failures"),
    show_default=True,
    help="Where failing traces go.",
)
@click.option(
    "--swarm/--no-swarm",
    default=False,
    help="Each seed draws its own delays, rates, message sizes and fault subset.",
)
@click.option(
    "--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Worker processes."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object, no table.")
@click.option("--node-factory", default=None, hidden=True, help="module:attr of a node class.")
def check_command(
    target: str,
    seeds_text: str | None,
    one_seed: int | None,
    nodes: int,
    steps: int,
    faults: str,
    pre_vote: bool,
    check_quorum: bool,
    snapshots: bool,
    conf_changes: bool,
    transfers: bool,
    reads: bool,
    lease_reads: bool,
    keep_traces: Path | None,
    save_failures: Path,
    swarm: bool,
    jobs: int,
    as_json: bool,
    node_factory: str | None,
) -> None:
    """Run a campaign of seeded simulations with faults; exit 1 on a violation."""
    if target not in TARGETS:
        raise click.UsageError(f"unknown target {target!r}; targets: {', '.join(TARGETS)}")
    if target == "api":
        _run_api(seeds_text, one_seed, nodes, steps, faults, save_failures, as_json, node_factory)
        return
    if target == "kv":
        _run_kv(
            seeds_text,
            one_seed,
            nodes,
            steps,
            faults,
            pre_vote,
            check_quorum,
            keep_traces,
            save_failures,
            swarm,
            jobs,
            as_json,
            node_factory,
        )
        return
    if target != "all" and target not in BUILT:
        raise click.UsageError(
            f"target {target!r} is not built yet; built targets: {', '.join(BUILT)}"
        )
    if seeds_text is not None and one_seed is not None:
        raise click.UsageError("give --seeds A..B or --seed N, not both")
    seeds = (
        range(one_seed, one_seed + 1)
        if one_seed is not None
        else parse_seeds(seeds_text if seeds_text is not None else "0..9")
    )
    try:
        fault_set = parse_faults(faults)
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--faults") from None
    if lease_reads and not check_quorum:
        raise click.UsageError("--lease-reads needs --check-quorum (etcd requires it for leases)")
    if lease_reads and not reads:
        raise click.UsageError("--lease-reads makes no sense with --no-reads")
    try:
        cfg = SimConfig(
            nodes=nodes,
            steps=steps,
            faults=fault_set,
            pre_vote=pre_vote,
            check_quorum=check_quorum,
            snapshots=snapshots,
            conf_changes=conf_changes,
            transfers=transfers,
            reads=reads,
            read_only_lease=lease_reads,
        )
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    factory: NodeFactory = RaftNode
    if node_factory is not None:
        from kubeproof.sim.replay import ReplayError, load_factory

        try:
            factory = load_factory(node_factory)
        except ReplayError as e:
            raise click.BadParameter(str(e), param_hint="--node-factory") from None

    console = Console(stderr=True)
    show_progress = not as_json and console.is_terminal
    progress = Progress(
        TextColumn("[bold]check raft"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not show_progress,
    )
    failed = 0

    def on_result(run: RunResult) -> None:
        nonlocal failed
        if run.violation is not None:
            failed += 1
        status = f"[red]{failed} violation(s)[/red]" if failed else "[green]ok[/green]"
        progress.update(task, advance=1, status=status)

    with progress:
        task = progress.add_task("seeds", total=len(seeds), status="")
        result = run_campaign(
            cfg,
            list(seeds),
            checkers_factory=raft_checkers_factory(),
            node_factory=factory,
            keep_traces=keep_traces,
            save_failures=save_failures,
            on_result=on_result,
            jobs=jobs,
            target="raft",
            swarm=swarm,
        )

    if as_json:
        click.echo(json.dumps(_json_report(result), sort_keys=True))
    else:
        out = Console()
        out.print(_summary_table(result))
        for f in result.failures:
            where = f" -> {f.trace}" if f.trace is not None else ""
            again = "" if f.reproduced else " [yellow](re-run did not reproduce it!)[/yellow]"
            out.print(
                f"[red]seed {f.seed}[/red]: {f.violation.invariant} at step "
                f"{f.violation.step}: {f.violation.message}{where}{again}"
            )
        if result.failures:
            first = next((f for f in result.failures if f.trace is not None), None)
            if first is not None:
                out.print(f"replay with: kubeproof replay {first.trace}")
    sys.exit(1 if result.violations else 0)


def _run_api(
    seeds_text: str | None,
    one_seed: int | None,
    nodes: int,
    steps: int,
    faults: str,
    save_failures: Path,
    as_json: bool,
    node_factory: str | None,
) -> None:
    """`check api` has its own simulation (kubeproof.cli.check_api); flags left at
    their defaults take the api target's defaults."""
    from click.core import ParameterSource

    from . import check_api

    if seeds_text is not None and one_seed is not None:
        raise click.UsageError("give --seeds A..B or --seed N, not both")
    seeds = (
        range(one_seed, one_seed + 1)
        if one_seed is not None
        else parse_seeds(seeds_text if seeds_text is not None else "0..9")
    )
    ctx = click.get_current_context()

    def given(name: str) -> bool:
        return ctx.get_parameter_source(name) is not ParameterSource.DEFAULT

    check_api.run_cli(
        seeds=seeds,
        nodes=nodes if given("nodes") else None,
        steps=steps if given("steps") else None,
        faults=faults,
        save_failures=save_failures,
        as_json=as_json,
        node_factory=node_factory,
    )


def _run_kv(
    seeds_text: str | None,
    one_seed: int | None,
    nodes: int,
    steps: int,
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
    """`check kv` has its own simulation (kubeproof.cli.check_kv); --steps left at its
    default takes the kv target's (6000 events)."""
    from click.core import ParameterSource

    from . import check_kv

    if seeds_text is not None and one_seed is not None:
        raise click.UsageError("give --seeds A..B or --seed N, not both")
    seeds = (
        range(one_seed, one_seed + 1)
        if one_seed is not None
        else parse_seeds(seeds_text if seeds_text is not None else "0..9")
    )
    ctx = click.get_current_context()
    given = ctx.get_parameter_source("steps") is not ParameterSource.DEFAULT
    check_kv.run_cli(
        seeds=seeds,
        nodes=nodes,
        steps=steps if given else None,
        faults=faults,
        pre_vote=pre_vote,
        check_quorum=check_quorum,
        keep_traces=keep_traces,
        save_failures=save_failures,
        swarm=swarm,
        jobs=jobs,
        as_json=as_json,
        node_factory=node_factory,
    )


command = check_command
