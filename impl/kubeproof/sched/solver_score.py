"""The solver's "score" objective: a linear proxy of kube-scheduler's weighted score.

Theory of operation
-------------------
kube-scheduler scores one pod at a time, against the cluster as it is at that
cycle, normalizes some plugins' scores over the nodes that passed the filters
then, and multiplies by the plugin weights.  That total is neither linear in
the placement nor independent of the order, so the solver optimizes a stated
proxy instead: each batch pod p placed on node n earns the fixed integer

    s(p, n) = LeastAllocated(p, n) + BalancedAllocation(p, n)
              + 3 * TaintToleration(p, n) + 2 * NodeAffinity(p, n)

computed with kube-scheduler's v1.32 formulas and default weights, *as if p
were the only pod added to n* (the running pods count, the rest of the batch
does not), with TaintToleration's and NodeAffinity's normalization taken over
p's candidate nodes.  The objective is the sum of s over placed pods.

What the proxy leaves out, on purpose: the effect of batch pods on each
other's LeastAllocated/BalancedAllocation (it is not linear), preferred
inter-pod affinity and ScheduleAnyway topology spread (they depend on where
the rest of the batch goes), and ImageLocality.  A pod's s(p, n) is therefore
exactly the score kube-scheduler would give it if it were scheduled first,
up to the normalization set.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from .model import CPU, MEMORY, Node, Pod
from .solver_match import node_term_matches, tolerates
from .solver_problem import Problem

__all__ = ["WEIGHTS", "static_scores"]

WEIGHTS = {
    "NodeResourcesFit": 1,
    "NodeResourcesBalancedAllocation": 1,
    "TaintToleration": 3,
    "NodeAffinity": 2,
}
MAX_NODE_SCORE = 100


def _least_allocated(requested: Sequence[int], allocatable: Sequence[int]) -> int:
    total = weights = 0
    for req, cap in zip(requested, allocatable, strict=True):
        if cap == 0:
            continue
        total += 0 if req > cap else (cap - req) * MAX_NODE_SCORE // cap
        weights += 1
    return total // weights if weights else 0


def _balanced(requested: Sequence[int], allocatable: Sequence[int]) -> int:
    fractions = [
        min(req / cap, 1.0) for req, cap in zip(requested, allocatable, strict=True) if cap
    ]
    std = 0.0
    if len(fractions) == 2:
        std = abs((fractions[0] - fractions[1]) / 2)
    elif len(fractions) > 2:
        mean = sum(fractions) / len(fractions)
        std = math.sqrt(sum((f - mean) ** 2 for f in fractions) / len(fractions))
    return int((1 - std) * MAX_NODE_SCORE)


def _prefer_no_schedule(pod: Pod, node: Node) -> int:
    tols = [t for t in pod.tolerations if t.effect in ("", "PreferNoSchedule")]
    return sum(
        1
        for taint in node.taints
        if taint.effect == "PreferNoSchedule" and not any(tolerates(t, taint) for t in tols)
    )


def _preferred_affinity(pod: Pod, node: Node) -> int:
    na = pod.affinity.node_affinity if pod.affinity is not None else None
    if na is None:
        return 0
    return sum(t.weight for t in na.preferred if node_term_matches(t.preference, node))


def static_scores(problem: Problem) -> list[dict[int, int]]:
    """s(p, n) for every batch pod p and each of its candidate nodes n."""
    nodes = problem.nodes
    non_zero = [[0, 0] for _ in nodes]
    actual = [[0, 0] for _ in nodes]
    for qi, q in enumerate(problem.running):
        ni = problem.running_node[qi]
        nz, rq = q.non_zero_requests(), q.requests()
        non_zero[ni][0] += nz.milli_cpu
        non_zero[ni][1] += nz.memory
        actual[ni][0] += rq.milli_cpu
        actual[ni][1] += rq.memory
    out: list[dict[int, int]] = []
    for pi, pod in enumerate(problem.batch):
        cands = problem.candidates[pi]
        nz, rq = pod.non_zero_requests(), pod.requests()
        taints = {ni: _prefer_no_schedule(pod, nodes[ni]) for ni in cands}
        prefs = {ni: _preferred_affinity(pod, nodes[ni]) for ni in cands}
        max_taint = max(taints.values(), default=0)
        max_pref = max(prefs.values(), default=0)
        row: dict[int, int] = {}
        for ni in cands:
            alloc = (nodes[ni].allocatable.get(CPU), nodes[ni].allocatable.get(MEMORY))
            fit = _least_allocated(
                (non_zero[ni][0] + nz.milli_cpu, non_zero[ni][1] + nz.memory), alloc
            )
            bal = _balanced((actual[ni][0] + rq.milli_cpu, actual[ni][1] + rq.memory), alloc)
            tt = (
                MAX_NODE_SCORE - MAX_NODE_SCORE * taints[ni] // max_taint
                if max_taint
                else MAX_NODE_SCORE
            )
            na = MAX_NODE_SCORE * prefs[ni] // max_pref if max_pref else 0
            row[ni] = (
                WEIGHTS["NodeResourcesFit"] * fit
                + WEIGHTS["NodeResourcesBalancedAllocation"] * bal
                + WEIGHTS["TaintToleration"] * tt
                + WEIGHTS["NodeAffinity"] * na
            )
        out.append(row)
    return out
