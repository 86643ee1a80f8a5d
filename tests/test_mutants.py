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
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from kubeproof.raft import RaftNode
from kubeproof.sim.campaign import run_campaign
from kubeproof.sim.config import SimConfig
from kubeproof.sim.observe import Checker
from kubeproof.spec.raft import (
    COMMIT_CURRENT_TERM,
    TRUNCATE_ON_CONFLICT,
    VOTE_ONCE,
    raft_checkers,
)
from tests.mutants.raft_mutants import MUTANTS

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
