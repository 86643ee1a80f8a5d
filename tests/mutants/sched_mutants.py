"""Deliberately broken schedulers: each misreads exactly one hard constraint.

A mutant is the Z3 batch solver run on a *misread* cluster -- what a
scheduler with that bug believes -- whose placement is then checked by the
spec's checker against the real cluster.  tests/test_spec_sched.py asserts
that the checker catches every one (with the named invariant) on a concrete
cluster and on generated clusters within a bounded number of examples, and
that the unbroken solver passes the same clusters.

=============================  ===========================================
mutant                         the bug
=============================  ===========================================
``overcommit_by_one``          capacity checked as ``requests <= allocatable
                               + 1`` (one unit of every resource, one pod)
``anti_affinity_one_way``      anti-affinity checked only in the incoming
                               pod's direction: running pods' required
                               anti-affinity terms are ignored
``toleration_key_only``        a toleration tolerates every taint with its
                               key, whatever the value, operator and effect
``spread_skew_off_by_one``     topology spread allows a skew of maxSkew + 1
=============================  ===========================================

Preemption mutants (`PREEMPTION_MUTANTS`) break the "least-preemption"
objective; each is a function from a cluster (nodes, pods, budgets) to the
result the broken solver would give, checked by tests/test_sched_solver_preemption.py
with ``check_placement(..., evicted=result.evicted)``:

=============================  ===========================================
mutant                         the bug
=============================  ===========================================
``evict_equal_priority``       a pending pod may evict a running pod of its
                               own priority (the solver sees every pending
                               pod one priority higher)
``evictions_not_released``     the result forgets its evictions: the victims
                               are reported running where they ran, so the
                               checker sees them still holding their node
=============================  ===========================================
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import attrs

from kubeproof.sched.load import PodDisruptionBudget
from kubeproof.sched.model import Node, Pod, Resources, Toleration
from kubeproof.sched.solver import SolveResult, solve

Misread = Callable[[Sequence[Node], Sequence[Pod]], tuple[list[Node], list[Pod]]]
BrokenSolve = Callable[[Sequence[Node], Sequence[Pod], Sequence[PodDisruptionBudget]], SolveResult]


def overcommit_by_one(nodes: Sequence[Node], pods: Sequence[Pod]) -> tuple[list[Node], list[Pod]]:
    def plus_one(r: Resources) -> Resources:
        scalar = {k: v + 1 for k, v in r.scalar.items()}
        for p in pods:
            for k in p.requests().scalar:
                scalar.setdefault(k, 1)
        return Resources(r.milli_cpu + 1, r.memory + 1, r.ephemeral_storage + 1, r.pods + 1, scalar)

    return [attrs.evolve(n, allocatable=plus_one(n.allocatable)) for n in nodes], list(pods)


def anti_affinity_one_way(
    nodes: Sequence[Node], pods: Sequence[Pod]
) -> tuple[list[Node], list[Pod]]:
    def forget(p: Pod) -> Pod:
        if not p.node_name or p.affinity is None or p.affinity.pod_anti_affinity is None:
            return p
        return attrs.evolve(p, affinity=attrs.evolve(p.affinity, pod_anti_affinity=None))

    return list(nodes), [forget(p) for p in pods]


def toleration_key_only(nodes: Sequence[Node], pods: Sequence[Pod]) -> tuple[list[Node], list[Pod]]:
    def loose(p: Pod) -> Pod:
        return attrs.evolve(
            p, tolerations=tuple(Toleration(t.key, "Exists") for t in p.tolerations)
        )

    return list(nodes), [loose(p) for p in pods]


def spread_skew_off_by_one(
    nodes: Sequence[Node], pods: Sequence[Pod]
) -> tuple[list[Node], list[Pod]]:
    def wider(p: Pod) -> Pod:
        return attrs.evolve(
            p,
            topology_spread_constraints=tuple(
                attrs.evolve(c, max_skew=c.max_skew + 1) for c in p.topology_spread_constraints
            ),
        )

    return list(nodes), [wider(p) for p in pods]


MUTANTS: dict[str, tuple[Misread, str]] = {
    "overcommit_by_one": (overcommit_by_one, "SCHED-NO-OVERCOMMIT"),
    "anti_affinity_one_way": (anti_affinity_one_way, "SCHED-HARD-CONSTRAINTS"),
    "toleration_key_only": (toleration_key_only, "SCHED-HARD-CONSTRAINTS"),
    "spread_skew_off_by_one": (spread_skew_off_by_one, "SCHED-HARD-CONSTRAINTS"),
}
"""name -> (the misreading, the invariant that must catch it)."""


def mutant_solve(misread: Misread, nodes: Sequence[Node], pods: Sequence[Pod]) -> SolveResult:
    """The broken scheduler: the real solver, fed the misread cluster.

    It packs (fewest nodes), which presses against every constraint, so a
    misread one shows up in the placement whenever the cluster allows.
    """
    believed_nodes, believed_pods = misread(nodes, pods)
    return solve(
        believed_nodes, believed_pods, objective="fewest-nodes", timeout_s=30, explain=False
    )


def evict_equal_priority(
    nodes: Sequence[Node], pods: Sequence[Pod], pdbs: Sequence[PodDisruptionBudget]
) -> SolveResult:
    believed = [p if p.node_name else attrs.evolve(p, priority=p.priority + 1) for p in pods]
    return solve(nodes, believed, objective="least-preemption", explain=False, pdbs=pdbs)


def evictions_not_released(
    nodes: Sequence[Node], pods: Sequence[Pod], pdbs: Sequence[PodDisruptionBudget]
) -> SolveResult:
    r = solve(nodes, pods, objective="least-preemption", explain=False, pdbs=pdbs)
    home = {p.key: p.node_name for p in pods}
    return attrs.evolve(
        r, evicted=(), placements={**r.placements, **{k: home[k] for k in r.evicted}}
    )


PREEMPTION_MUTANTS: dict[str, tuple[BrokenSolve, str]] = {
    "evict_equal_priority": (evict_equal_priority, "SCHED-PREEMPTION-JUSTIFIED"),
    "evictions_not_released": (evictions_not_released, "SCHED-NO-OVERCOMMIT"),
}
"""name -> (the broken solver, the invariant that must catch it)."""


__all__ = ["MUTANTS", "PREEMPTION_MUTANTS", "mutant_solve"]
