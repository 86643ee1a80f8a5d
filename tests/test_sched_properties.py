"""Properties of the greedy scheduler over generated clusters (kube-scheduler v1.32 rules).

The checks here are written apart from the plugins: they look at the final
placement only.  Two tests show they have teeth, by disabling a filter
through the configuration and watching the check fail.
"""

from __future__ import annotations

import random

from hypothesis import given, settings

from kubeproof.sched.model import Node, Pod
from kubeproof.sched.scheduler import Scheduler, ScheduleResult
from kubeproof.sched.selectors import compile_selector, tolerates_any
from tests.sched_helpers import config, node, pod, run
from tests.sched_strategies import clusters

HEAD = "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n"
Cluster = tuple[list[Node], list[Pod], list[Pod]]


def overcommitted(nodes: list[Node], pods: list[Pod], result: ScheduleResult) -> list[str]:
    """Nodes whose placed pods request more than they can give (cpu, memory, pods, ports)."""
    bad = []
    for n in nodes:
        on = [p for p in pods if result.placements.get(p.key) == n.name]
        cpu = sum(p.requests().milli_cpu for p in on)
        mem = sum(p.requests().memory for p in on)
        ports = [
            (pp.host_ip or "0.0.0.0", pp.protocol, pp.host_port)
            for p in on
            for pp in p.host_ports()
        ]
        a = n.allocatable
        if cpu > a.milli_cpu or mem > a.memory or len(on) > a.pods or len(ports) != len(set(ports)):
            bad.append(n.name)
    return bad


def hard_violations(nodes: list[Node], pods: list[Pod], result: ScheduleResult) -> list[str]:
    """Scheduled pods on a node they may not use: taints, node affinity, pod anti-affinity."""
    by_name = {n.name: n for n in nodes}
    placed = [
        (p, by_name[where]) for p in pods if (where := result.placements.get(p.key)) is not None
    ]
    scheduled = {k for k, _ in result.bound}
    out = []
    for p, n in placed:
        if p.key not in scheduled:
            continue
        for t in n.taints:
            if t.effect in ("NoSchedule", "NoExecute") and not tolerates_any(p.tolerations, t):
                out.append(f"{p.key} on {n.name}: taint {t}")
        if n.unschedulable:
            out.append(f"{p.key} on unschedulable {n.name}")
        na = p.affinity.node_affinity if p.affinity else None
        if na is not None and na.required is not None:
            ok = any(
                all(n.labels.get(r.key) in r.values for r in term.match_expressions)
                for term in na.required.terms
            )
            if not ok:
                out.append(f"{p.key} on {n.name}: node affinity")
        anti = p.affinity.pod_anti_affinity if p.affinity else None
        for term in anti.required if anti else ():
            sel = compile_selector(term.label_selector)
            for q, m in placed:
                if q.key == p.key or q.namespace != p.namespace:
                    continue
                same = term.topology_key in n.labels and n.labels[
                    term.topology_key
                ] == m.labels.get(term.topology_key)
                if same and sel.matches(q.labels):
                    out.append(f"{p.key} on {n.name}: anti-affinity with {q.key} on {m.name}")
    return out


@settings(max_examples=60)
@given(clusters())
def test_no_overcommit_and_hard_constraints_hold(c: Cluster) -> None:
    nodes, running, pending = c
    r = run(nodes, [*running, *pending], seed=3)
    assert overcommitted(nodes, [*running, *pending], r) == []
    assert hard_violations(nodes, [*running, *pending], r) == []
    for key, node_name in r.placements.items():
        assert (node_name is None) == (key in r.reasons)


@settings(max_examples=40)
@given(clusters())
def test_same_seed_same_placement(c: Cluster) -> None:
    nodes, running, pending = c
    a = Scheduler(nodes, [*running, *pending], rng=random.Random(11)).run()
    b = Scheduler(nodes, [*running, *pending], rng=random.Random(11)).run()
    assert a.placements == b.placements
    assert a.bound == b.bound and a.reasons == b.reasons


@settings(max_examples=30)
@given(clusters(max_pods=3))
def test_explained_choice_has_the_best_total(c: Cluster) -> None:
    nodes, running, pending = c
    keys = [p.key for p in pending]
    r = run(nodes, [*running, *pending], explain=keys)
    for key in keys:
        e = r.explanations.get(key)
        if e is None or e.node is None:
            continue
        totals = {n.node: n.total for n in e.nodes if n.total is not None}
        if totals:
            assert totals[e.node] == max(t for t in totals.values() if t is not None)
        assert next(n for n in e.nodes if n.node == e.node).feasible


def test_overcommit_check_catches_a_scheduler_without_resource_fit() -> None:
    cfg = config(
        HEAD + "profiles:\n- plugins:\n    filter:\n      disabled: [{name: NodeResourcesFit}]\n"
    )
    nodes = [node("n", cpu=1000, mem=1000)]
    pods = [pod("a", 700), pod("b", 700)]
    broken = run(nodes, pods, cfg)
    assert overcommitted(nodes, pods, broken) == ["n"]
    assert overcommitted(nodes, pods, run(nodes, pods)) == []


def test_anti_affinity_check_catches_a_scheduler_without_inter_pod_affinity() -> None:
    from kubeproof.sched.model import Affinity, LabelSelector, PodAffinityTerm, PodAntiAffinity

    cfg = config(
        HEAD + "profiles:\n- plugins:\n    filter:\n      disabled: [{name: InterPodAffinity}]\n"
    )
    anti = Affinity(
        pod_anti_affinity=PodAntiAffinity(
            (PodAffinityTerm("kubernetes.io/hostname", LabelSelector({"app": "w"})),)
        )
    )
    nodes = [node("n")]
    pods = [pod(f"w{i}", 10, labels={"app": "w"}, affinity=anti) for i in range(2)]
    assert hard_violations(nodes, pods, run(nodes, pods, cfg)) != []
    assert hard_violations(nodes, pods, run(nodes, pods)) == []
