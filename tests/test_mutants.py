"""The checks have teeth: the harness catches every broken Raft node within 200 seeds.

For each mutant in `tests/mutants/raft_mutants.py` we run seeded campaigns
(swarm configurations: every seed draws its own delays, rates, message sizes
and fault subset) until an invariant is violated, and assert that this
happens within `MAX_SEEDS`. The correct node must pass the very same seeds,
so the catch is the mutation's doing.

A second test uses only the paper's consequence-level invariants (no
RAFT-VOTE-ONCE, RAFT-TRUNCATE-ON-CONFLICT or RAFT-COMMIT-CURRENT-TERM, which
check the broken rule directly) and a crash-heavy configuration: the bugs
that can be seen as two leaders in a term or a lost committed entry are
seen that way too.

A third covers etcd's extensions (`FEATURE_MUTANTS`): membership changes,
PreVote, ReadIndex, leases, snapshots.  Each runs with the harness's features
on (snapshots, membership changes, transfers, reads), in the configuration
its bug needs (PreVote for the pre-candidate, lease reads for the lease),
and must be caught by one of the invariants that name its rule, within
`MAX_SEEDS`, with the correct node passing the same seed.  Seeds needed
(first catching seed + 1, 3 / 5 members), measured when these were written:
single-server bug 2 / 1, pre-candidate term 1 / 1, ReadIndex without quorum
43 / 14, lease without CheckQuorum 17 / 14, learner in quorum 2 / 1,
snapshot over newer entries 12 / 9.  (With five members a deposed leader
needs a minority partition and a read there before it learns of the new
term: those two run without swarm, reading every ~30 time units.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from kubeproof.raft import RaftNode
from kubeproof.sim.campaign import run_campaign
from kubeproof.sim.cluster import STORAGE_SNAPSHOT_OUT_OF_DATE
from kubeproof.sim.config import SimConfig
from kubeproof.sim.observe import Checker
from kubeproof.spec.raft import (
    COMMIT_CURRENT_TERM,
    COMMIT_MONOTONIC,
    COMMITTED_DURABLE,
    CONFIG_SAFETY,
    PREVOTE_TERM,
    READ_LINEARIZABLE,
    TRUNCATE_ON_CONFLICT,
    VOTE_ONCE,
    raft_checkers,
)
from tests.mutants.raft_mutants import FEATURE_MUTANTS, MUTANTS

MAX_SEEDS = 200
ALL_FAULTS = frozenset({"loss", "dup", "reorder", "partition", "crash"})


def first_caught(
    node: type[RaftNode],
    config: SimConfig,
    *,
    swarm: bool,
    checkers: object = raft_checkers,
) -> tuple[int, str, int] | None:
    for seed in range(MAX_SEEDS):
        result = run_campaign(
            config,
            [seed],
            checkers_factory=checkers,  # type: ignore[arg-type]
            node_factory=node,
            swarm=swarm,
        )
        if result.failures:
            v = result.failures[0].violation
            return seed, v.invariant, v.step
    return None


@pytest.mark.parametrize("nodes", [3, 5])
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_harness_catches_mutant(name: str, nodes: int) -> None:
    config = SimConfig(nodes=nodes, steps=3000, faults=ALL_FAULTS)
    caught = first_caught(MUTANTS[name], config, swarm=True)
    assert caught is not None, f"{name} survived {MAX_SEEDS} seeds"
    seed, invariant, step = caught
    # The correct node passes the seed that caught the mutant.
    control = run_campaign(config, [seed], checkers_factory=raft_checkers, swarm=True)
    assert control.violations == 0, (name, seed, invariant, step)


DIRECT_RULE_CHECKS = {VOTE_ONCE, TRUNCATE_ON_CONFLICT, COMMIT_CURRENT_TERM}


def paper_checkers() -> Sequence[Checker]:
    return [c for c in raft_checkers() if getattr(c, "ID", None) not in DIRECT_RULE_CHECKS]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("double-vote", {"RAFT-ELECTION-SAFETY"}),
        ("forget-vote-on-restart", {"RAFT-ELECTION-SAFETY"}),
        ("skip-up-to-date-check", {"RAFT-LEADER-COMPLETENESS", "RAFT-STATE-MACHINE-SAFETY"}),
        (
            "truncate-on-stale-append",
            {"RAFT-COMMITTED-DURABLE", "RAFT-LEADER-COMPLETENESS", "LOG-NO-TRUNCATE-COMMITTED"},
        ),
    ],
)
def test_consequences_are_caught_too(name: str, expected: set[str]) -> None:
    config = SimConfig(
        nodes=3,
        steps=3000,
        faults=frozenset({"loss", "crash", "reorder", "dup"}),
        fault_interval=50,
        down_min=10,
        down_max=100,
        max_size_per_msg=0,
    )
    caught = first_caught(MUTANTS[name], config, swarm=False, checkers=paper_checkers)
    assert caught is not None, f"{name} survived {MAX_SEEDS} seeds with paper invariants only"
    assert caught[1] in expected, caught


FEATURES: dict[str, Any] = {
    "snapshots": True,
    "conf_changes": True,
    "transfers": True,
    "reads": True,
}
LEASE: dict[str, Any] = {"check_quorum": True, "read_only_lease": True}
SNAPSHOT_RULES = {
    TRUNCATE_ON_CONFLICT,
    COMMITTED_DURABLE,
    COMMIT_MONOTONIC,
    STORAGE_SNAPSHOT_OUT_OF_DATE,
}

FEATURE_CASES: list[tuple[str, int, dict[str, Any], bool, set[str]]] = [
    # (mutant, members, configuration, swarm, invariants that name its rule)
    ("conf-change-before-own-term-commit", 3, {}, True, {CONFIG_SAFETY}),
    ("conf-change-before-own-term-commit", 5, {}, True, {CONFIG_SAFETY}),
    ("pre-candidate-bumps-term", 3, {"pre_vote": True}, True, {PREVOTE_TERM}),
    ("pre-candidate-bumps-term", 5, {"pre_vote": True}, True, {PREVOTE_TERM}),
    ("read-index-without-quorum", 3, {}, True, {READ_LINEARIZABLE}),
    # Five members need a deposed leader in a minority and a read there: read often.
    ("read-index-without-quorum", 5, {"read_interval": 30}, False, {READ_LINEARIZABLE}),
    ("lease-read-without-check-quorum", 3, LEASE, True, {READ_LINEARIZABLE}),
    (
        "lease-read-without-check-quorum",
        5,
        {**LEASE, "read_interval": 30},
        False,
        {READ_LINEARIZABLE},
    ),
    ("learner-counted-in-quorum", 3, {}, True, {COMMITTED_DURABLE}),
    ("learner-counted-in-quorum", 5, {}, True, {COMMITTED_DURABLE}),
    ("snapshot-over-newer-entries", 3, {}, True, SNAPSHOT_RULES),
    ("snapshot-over-newer-entries", 5, {}, True, SNAPSHOT_RULES),
]


@pytest.mark.parametrize(
    ("name", "nodes", "extra", "swarm", "expected"),
    FEATURE_CASES,
    ids=[f"{c[0]}-{c[1]}" for c in FEATURE_CASES],
)
def test_harness_catches_feature_mutant(
    name: str, nodes: int, extra: dict[str, Any], swarm: bool, expected: set[str]
) -> None:
    config = SimConfig(nodes=nodes, steps=3000, faults=ALL_FAULTS, **FEATURES, **extra)
    caught = first_caught(FEATURE_MUTANTS[name], config, swarm=swarm)
    assert caught is not None, f"{name} survived {MAX_SEEDS} seeds"
    seed, invariant, step = caught
    assert invariant in expected, caught
    control = run_campaign(config, [seed], checkers_factory=raft_checkers, swarm=swarm)
    assert control.violations == 0, (name, seed, invariant, step)
