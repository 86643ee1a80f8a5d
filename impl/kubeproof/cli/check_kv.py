"""`kubeproof check kv`: seeded simulations of the replicated store, every invariant checked.

A composition root: it wires the store's simulation (`kubeproof.sim.kv`) to
the spec's checkers (`kubeproof.spec.kv.kv_checkers`: the store's
invariants and every Raft invariant) and to a member class (the real
`kubeproof.etcd.Member`, or a mutant through `kv_campaign(member_factory=...)`
or the hidden ``--node-factory module:attr``).  `prepare` is the target for
`kubeproof check` (`campaign_runner` runs it).

Flags it shares with `kubeproof check`: ``--seeds A..B`` / ``--seed N``,
``--nodes``, ``--steps`` (events per seed; 6000 unless given), ``--faults``
(loss, dup, reorder, partition, crash; all; none), ``--pre-vote``,
``--check-quorum``, ``--swarm``, ``--jobs``, ``--keep-traces DIR``,
``--save-failures DIR`` (a failing seed is run again with its trace written
there as ``kv-seed-N.jsonl``), ``--json``.  Exit 0 without violations, 1
with, 2 on bad input.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import click
from attrs import frozen

from kubeproof.etcd import Member
from kubeproof.sim.campaign import CampaignResult
from kubeproof.sim.config import ConfigError, SimConfig, parse_faults
from kubeproof.sim.kv import KVCheckersFactory, run_kv_campaign
from kubeproof.sim.kvcluster import MemberFactory
from kubeproof.sim.kvconfig import KVSimConfig

from .campaign_runner import (
    Campaign,
    CheckOptions,
    Counters,
    SeedRun,
    counter_rows,
    load_node_factory,
    parsed,
    sim_report,
    sim_rows,
)

DEFAULT_STEPS = 6000


def kv_checkers_factory() -> KVCheckersFactory:
    """The spec's store checkers (imported here, at the composition root)."""
    from kubeproof.spec.kv import kv_checkers

    return kv_checkers


ROWS: Counters = (
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
"""The KV table's counter rows."""


@frozen
class KVCampaign(Campaign[CampaignResult]):
    config: KVSimConfig
    member_factory: MemberFactory = Member
    checkers_factory: KVCheckersFactory | None = None
    keep_traces: Path | None = None
    save_failures: Path | None = None
    jobs: int = 1
    swarm: bool = False
    name = "kv"

    def run(
        self, seeds: Sequence[int], on_result: Callable[[SeedRun], None] | None = None
    ) -> CampaignResult:
        return run_kv_campaign(
            self.config,
            list(seeds),
            checkers_factory=self.checkers_factory or kv_checkers_factory(),
            member_factory=self.member_factory,
            keep_traces=self.keep_traces,
            save_failures=self.save_failures,
            on_result=on_result,
            jobs=self.jobs,
            swarm=self.swarm,
        )

    def rows(self, result: CampaignResult, seconds: float) -> Iterable[tuple[str, str]]:
        return [
            *sim_rows(result.config, result.swarm),
            *counter_rows(result.totals, ROWS),
            ("wall time", f"{seconds:.1f} s"),
        ]

    def report(self, result: CampaignResult, seconds: float) -> dict[str, object]:
        return {**sim_report(result.config, result.swarm), "seconds": round(seconds, 3)}

    def hint(self, result: CampaignResult) -> str | None:
        return (
            "replay a saved failure with: kubeproof replay FILE; "
            "or re-run one seed with: kubeproof check kv --seed N --keep-traces DIR"
        )


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
    campaign = KVCampaign(
        cfg, member_factory, checkers_factory, keep_traces, save_failures, jobs, swarm
    )
    return campaign.run(seeds)


def prepare(options: CheckOptions) -> KVCampaign:
    """`kubeproof check kv`: its flags checked (exit 2 on bad input)."""
    # A KV run's members always snapshot (every 30 entries), its clients choose their
    # own reads, and it has no membership changes or transfers: nothing to switch.
    options.refuse("kv", ("lease_reads", "snapshots", "conf_changes", "transfers", "reads"))
    fault_set = parsed(parse_faults, options.faults, "--faults", ConfigError)
    try:
        sim = SimConfig(
            nodes=options.nodes,
            steps=options.or_default("steps", DEFAULT_STEPS),
            faults=fault_set,
            pre_vote=options.pre_vote,
            check_quorum=options.check_quorum,
        )
        cfg = KVSimConfig(sim=sim)
    except ConfigError as e:
        raise click.UsageError(str(e)) from None
    factory = load_node_factory(options.node_factory, Member)
    if not (isinstance(factory, type) and issubclass(factory, Member)):
        raise click.BadParameter(
            f"{options.node_factory} is not a kubeproof.etcd.Member class",
            param_hint="--node-factory",
        )
    return KVCampaign(
        cfg,
        factory,
        keep_traces=options.keep_traces,
        save_failures=options.save_failures,
        jobs=options.jobs,
        swarm=options.swarm,
    )
