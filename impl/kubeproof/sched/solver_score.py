"""The solver's "score" objective: the framework's own weighted score, pod by pod.

Theory of operation
-------------------
The solver maximizes the sum, over the placed batch pods p, of a fixed
integer s(p, n) for the node n that p is placed on:

    s(p, n) = the total kube-scheduler's framework gives n in a scheduling
              cycle for p against the *running* pods only (p "scheduled
              first"): PreFilter; Filter on every node; then PreScore,
              Score, NormalizeScore over the nodes that pass p's filters,
              times the profile's weights, summed.

It is computed by `Scheduler.score_nodes`, the code the greedy cycle runs,
with the profile that p's ``schedulerName`` names in the configuration given
(default: the default profile, so every default score plugin at its default
weight: NodeResourcesFit, BalancedAllocation, TaintToleration, NodeAffinity,
PodTopologySpread (ScheduleAnyway), InterPodAffinity (preferred terms, both
directions, against the running pods) and ImageLocality).  A pod whose
``schedulerName`` names no profile is scored with the configuration's first
one.  Unlike the greedy cycle, every node is filtered and every feasible
node scored (no percentageOfNodesToScore sampling), and no tie is broken.
Identical pods (one `Problem.pod_class`) score alike, so each class is
scored once.

What remains a proxy, inherent to a linear objective: s(p, n) does not
depend on where the rest of the batch goes.  kube-scheduler scoring the
second pod of the batch would see the first one (in resource utilization,
spread counts, inter-pod affinity, and in the set of feasible nodes the
normalization runs over); here every batch pod is scored as if it were the
first.  For the same reason, a node that p's filters reject against the
running pods but where the encoding lets p go once other batch pods are
bound (its required-affinity partner, or spread counts that the batch
evens out) has s(p, n) = 0: a pod scheduled first could not go there.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import evolve

from .config import SchedulerConfig
from .scheduler import Scheduler
from .solver_problem import Problem

__all__ = ["framework_scores", "score_node_classes"]


def framework_scores(
    problem: Problem, config: SchedulerConfig | None = None
) -> list[dict[int, int]]:
    """s(p, n) for every batch pod p (in order) and each of its candidate nodes n."""
    cfg = config if config is not None else SchedulerConfig.default()
    sched = Scheduler(problem.nodes, problem.running, cfg)
    fallback = cfg.profiles[0].scheduler_name
    by_class: dict[int, dict[str, int]] = {}
    out: list[dict[int, int]] = []
    for pi, pod in enumerate(problem.batch):
        cls = problem.pod_class[pi]
        if cls not in by_class:
            if cfg.profile(pod.scheduler_name) is None:
                pod = evolve(pod, scheduler_name=fallback)
            by_class[cls] = sched.score_nodes(pod)
        totals = by_class[cls]
        out.append({ni: totals.get(problem.nodes[ni].name, 0) for ni in problem.candidates[pi]})
    return out


def score_node_classes(problem: Problem, scores: Sequence[dict[int, int]]) -> tuple[int, ...]:
    """`Problem.node_class` split so that the nodes of a class score alike for every pod.

    The encoder breaks the symmetry between the nodes of a class; that is
    sound for the score objective only if no pod tells them apart by score
    (ImageLocality, say, reads images, which the classes do not).
    """
    classes: dict[tuple[object, ...], int] = {}
    return tuple(
        classes.setdefault(
            (cls, *(row.get(ni) for row in scores)),
            len(classes),
        )
        for ni, cls in enumerate(problem.node_class)
    )
