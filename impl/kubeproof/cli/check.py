"""`kubeproof check TARGET`: a campaign of seeded simulations, every invariant checked.

The command (its flags, the table of targets) and the `raft` target.  Each
built target has a ``prepare(CheckOptions) -> Campaign`` function in its own
module (`raft` here, `kv` in `check_kv`, `api` in `check_api`);
`campaign_runner` runs them: seeds, progress, summary table, JSON report,
failing seeds, exit status.  `all` runs every built target in turn.

The Raft target is a composition root: it wires the harness
(`kubeproof.sim`) to the spec's checkers (`kubeproof.spec.raft.raft_checkers`)
and to a node class (the real `RaftNode`, or a mutant through the hidden
`--node-factory` option or `raft_campaign(node_factory=...)`).

The Raft campaign runs with every harness feature on by default (snapshots
and compaction, membership changes, leadership transfers, ReadIndex reads;
`FEATURES`); `--no-snapshots`, `--no-conf-changes`, `--no-transfers` and
`--no-reads` turn them off, `--lease-reads` makes reads lease-based (with
`--check-quorum`, as etcd requires).

Exit status: 0 no violation, 1 at least one violation (traces saved),
2 bad input.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click
from attrs import frozen
from click.core import ParameterSource

from kubeproof.raft import RaftNode
from kubeproof.sim.campaign import CampaignResult, CheckersFactory, run_campaign
from kubeproof.sim.config import ConfigError, SimConfig, parse_faults
from kubeproof.sim.member import NodeFactory

from .campaign_runner import (
    Campaign,
    CheckOptions,
    Counters,
    SeedRun,
    counter_rows,
    drive,
    load_node_factory,
    parsed,
    seed_range,
    sim_report,
    sim_rows,
)

TARGETS = ("raft", "kv", "api", "sched", "cluster", "all")
PREPARE: dict[str, tuple[str, str]] = {
    "raft": ("kubeproof.cli.check", "prepare"),
    "kv": ("kubeproof.cli.check_kv", "prepare"),
    "api": ("kubeproof.cli.check_api", "prepare"),
}
"""The built targets, in the order `all` runs them: where each one's ``prepare`` is."""
BUILT = tuple(PREPARE)

FEATURES: dict[str, bool] = {
    "snapshots": True,
    "conf_changes": True,
    "transfers": True,
    "reads": True,
}
"""The harness features `kubeproof check raft` (and `raft_campaign`) turn on by default."""


def raft_checkers_factory() -> CheckersFactory:
    """The spec's Raft checkers (imported here, at the composition root)."""
    from kubeproof.spec.raft import raft_checkers

    return raft_checkers


ROWS: Counters = (
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
)
"""The Raft table's counter rows."""


def _features(cfg: SimConfig) -> dict[str, bool]:
    return {
        "snapshots": cfg.snapshots,
        "conf_changes": cfg.conf_changes,
        "transfers": cfg.transfers,
        "reads": cfg.reads,
        "lease_reads": cfg.read_only_lease,
        "pre_vote": cfg.pre_vote,
        "check_quorum": cfg.check_quorum,
    }


@frozen
class RaftCampaign(Campaign[CampaignResult]):
    config: SimConfig
    node_factory: NodeFactory = RaftNode
    checkers_factory: CheckersFactory | None = None
    keep_traces: Path | None = None
    save_failures: Path | None = None
    jobs: int = 1
    swarm: bool = False
    name = "raft"

    def run(
        self, seeds: Sequence[int], on_result: Callable[[SeedRun], None] | None = None
    ) -> CampaignResult:
        return run_campaign(
            self.config,
            list(seeds),
            checkers_factory=self.checkers_factory or raft_checkers_factory(),
            node_factory=self.node_factory,
            keep_traces=self.keep_traces,
            save_failures=self.save_failures,
            on_result=on_result,
            jobs=self.jobs,
            target="raft",
            swarm=self.swarm,
        )

    def rows(self, result: CampaignResult, seconds: float) -> Iterable[tuple[str, str]]:
        on = [name.replace("_", "-") for name, flag in _features(result.config).items() if flag]
        return [
            *sim_rows(result.config, result.swarm),
            ("features", ",".join(on) or "none"),
            *counter_rows(result.totals, ROWS),
        ]

    def report(self, result: CampaignResult, seconds: float) -> dict[str, object]:
        return {**sim_report(result.config, result.swarm), "features": _features(result.config)}

    def hint(self, result: CampaignResult) -> str | None:
        first = next((f for f in result.failures if f.trace is not None), None)
        return None if first is None else f"replay with: kubeproof replay {first.trace}"


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
    campaign = RaftCampaign(
        cfg, node_factory, checkers_factory, keep_traces, save_failures, jobs, swarm
    )
    return campaign.run(seeds)


def prepare(options: CheckOptions) -> RaftCampaign:
    """`kubeproof check raft`: its flags checked (exit 2 on bad input)."""
    fault_set = parsed(parse_faults, options.faults, "--faults", ConfigError)
    if options.lease_reads and not options.check_quorum:
        raise click.UsageError("--lease-reads needs --check-quorum (etcd requires it for leases)")
    if options.lease_reads and not options.reads:
        raise click.UsageError("--lease-reads makes no sense with --no-reads")
    try:
        cfg = SimConfig(
            nodes=options.nodes,
            steps=options.steps,
            faults=fault_set,
            pre_vote=options.pre_vote,
            check_quorum=options.check_quorum,
            snapshots=options.snapshots,
            conf_changes=options.conf_changes,
            transfers=options.transfers,
            reads=options.reads,
            read_only_lease=options.lease_reads,
        )
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    return RaftCampaign(
        cfg,
        load_node_factory(options.node_factory, RaftNode),
        keep_traces=options.keep_traces,
        save_failures=options.save_failures,
        jobs=options.jobs,
        swarm=options.swarm,
    )


def prepare_target(name: str, options: CheckOptions) -> Campaign[Any]:
    """The built target ``name``'s campaign for these flags."""
    module, attr = PREPARE[name]
    prepare_fn: Callable[[CheckOptions], Campaign[Any]] = getattr(
        importlib.import_module(module), attr
    )
    return prepare_fn(options)


def target_names(target: str) -> tuple[str, ...]:
    """The built targets ``kubeproof check TARGET`` runs: one, or every one for `all`."""
    if target not in TARGETS:
        raise click.UsageError(f"unknown target {target!r}; targets: {', '.join(TARGETS)}")
    if target == "all":
        return BUILT
    if target not in BUILT:
        raise click.UsageError(
            f"target {target!r} is not built yet; built targets: {', '.join(BUILT)}"
        )
    return (target,)


def prepare_targets(names: Sequence[str], options: CheckOptions) -> list[Campaign[Any]]:
    """The targets' campaigns, every one prepared (so every flag checked) before any runs;
    with several, an input error says which target it is for."""
    if len(names) == 1:
        return [prepare_target(names[0], options)]
    if options.node_factory is not None:
        raise click.UsageError("--node-factory names one target's class; give that target, not all")
    out: list[Campaign[Any]] = []
    for name in names:
        try:
            out.append(prepare_target(name, options))
        except click.UsageError as e:
            # A new error, not an edited one: click 8.5 made `message` final.
            raise click.UsageError(
                f"{e.format_message()} (for target {name} of all)", e.ctx
            ) from None
    return out


F = TypeVar("F", bound=Callable[..., Any])

_FEATURE_HELP = (
    (
        "snapshots",
        "Members snapshot their state and compact their logs; laggards catch up by MsgSnap.",
    ),
    ("conf-changes", "The leader proposes membership changes (add, remove, learners, joint)."),
    ("transfers", "Leadership transfers, some of which time out."),
    ("reads", "Clients ask linearizable ReadIndex reads."),
)


def _feature_flags(f: F) -> F:
    """--snapshots/--no-snapshots ...: the harness features (`FEATURES`), on by default."""
    for flag, text in reversed(_FEATURE_HELP):
        f = click.option(f"--{flag}/--no-{flag}", default=True, show_default=True, help=text)(f)
    return f


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
@_feature_flags
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
    target: str, seeds_text: str | None, one_seed: int | None, as_json: bool, **flags: Any
) -> None:
    """Run a campaign of seeded simulations with faults; exit 1 on a violation."""
    ctx = click.get_current_context()
    given = frozenset(
        name for name in flags if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT
    )
    names = target_names(target)
    seeds = seed_range(seeds_text, one_seed)
    options = CheckOptions(**flags, given=given, all_targets=len(names) > 1)
    campaigns = prepare_targets(names, options)
    sys.exit(drive(campaigns, seeds, as_json=as_json))


command = check_command
