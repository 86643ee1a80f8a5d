"""Small builders for scheduler tests (kube-scheduler v1.32 semantics)."""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence

from kubeproof.sched.config import SchedulerConfig
from kubeproof.sched.framework import CycleState, NodeInfo, PodInfo, Snapshot
from kubeproof.sched.load import load_cluster
from kubeproof.sched.model import (
    Affinity,
    Container,
    ContainerPort,
    Node,
    Pod,
    Resources,
    Taint,
    Toleration,
    TopologySpreadConstraint,
)
from kubeproof.sched.runtime import ClusterState, Framework
from kubeproof.sched.scheduler import Scheduler, ScheduleResult

GI = 1024**3
MI = 1024**2


def node(
    name: str,
    cpu: int = 4000,
    mem: int = 8 * GI,
    pods: int = 110,
    labels: Mapping[str, str] | None = None,
    taints: Sequence[Taint] = (),
    unschedulable: bool = False,
    scalar: Mapping[str, int] | None = None,
    eph: int = 0,
) -> Node:
    alloc = Resources(cpu, mem, eph, pods, scalar or {})
    lab = {"kubernetes.io/hostname": name, **(labels or {})}
    return Node(
        name,
        labels=lab,
        allocatable=alloc,
        capacity=alloc,
        taints=tuple(taints),
        unschedulable=unschedulable,
    )


def pod(
    name: str,
    cpu: int | None = None,
    mem: int | None = None,
    *,
    namespace: str = "default",
    labels: Mapping[str, str] | None = None,
    node_name: str = "",
    priority: int = 0,
    tolerations: Sequence[Toleration] = (),
    node_selector: Mapping[str, str] | None = None,
    affinity: Affinity | None = None,
    spread: Sequence[TopologySpreadConstraint] = (),
    host_ports: Sequence[int] = (),
    scalar: Mapping[str, int] | None = None,
    image: str = "",
    start_time: int | None = None,
    preemption_policy: str = "PreemptLowerPriority",
) -> Pod:
    amounts: dict[str, int] = {}
    if cpu is not None:
        amounts["cpu"] = cpu
    if mem is not None:
        amounts["memory"] = mem
    amounts.update(scalar or {})
    c = Container(
        "c",
        image=image,
        requests=Resources.from_mapping(amounts),
        requested_names=frozenset(amounts),
        ports=tuple(ContainerPort(80 + i, hp) for i, hp in enumerate(host_ports)),
    )
    return Pod(
        name,
        namespace=namespace,
        labels=labels or {},
        containers=(c,),
        node_name=node_name,
        priority=priority,
        tolerations=tuple(tolerations),
        node_selector=node_selector or {},
        affinity=affinity,
        topology_spread_constraints=tuple(spread),
        start_time=start_time,
        preemption_policy=preemption_policy,
    )


class Env:
    """A framework over a snapshot, for calling plugins directly."""

    def __init__(
        self,
        nodes: Sequence[Node],
        running: Iterable[Pod] = (),
        config: SchedulerConfig | None = None,
        seed: int = 0,
    ) -> None:
        cfg = config or SchedulerConfig.default()
        self.snapshot = Snapshot(nodes)
        for p in running:
            self.snapshot.add_pod(PodInfo(p), p.node_name)
        self.cluster = ClusterState(self.snapshot, random.Random(seed))
        self.fwk = Framework(cfg.profiles[0], self.cluster)

    def ni(self, name: str) -> NodeInfo:
        got = self.snapshot.get(name)
        assert got is not None
        return got

    def plugin(self, name: str) -> object:
        return self.fwk.instances[name]

    def prefilter(self, p: Pod) -> tuple[CycleState, PodInfo]:
        pi = PodInfo(p)
        state = CycleState()
        _res, st, _ = self.fwk.run_pre_filter(state, pi)
        assert st is None, st
        return state, pi

    def filter_reasons(self, p: Pod) -> dict[str, str]:
        """node -> "plugin: reasons" or "" for every node."""
        state, pi = self.prefilter(p)
        out = {}
        for ni in self.snapshot.node_infos:
            st = self.fwk.run_filter(state, pi, ni)
            out[ni.name] = "" if st is None else f"{st.plugin}: {st.message}"
        return out

    def scores(self, p: Pod, plugin: str, nodes: Sequence[str] | None = None) -> dict[str, int]:
        """One plugin's normalized (unweighted) scores over the given nodes."""
        state, pi = self.prefilter(p)
        infos = [self.ni(n) for n in nodes] if nodes else list(self.snapshot.node_infos)
        pl = self.fwk.instances[plugin]
        st = pl.pre_score(state, pi, infos) if hasattr(pl, "pre_score") else None
        if st is not None:
            return {ni.name: 0 for ni in infos}
        raw = [pl.score(state, pi, ni) for ni in infos]
        if hasattr(pl, "normalize_score"):
            pl.normalize_score(state, pi, infos, raw)
        return {ni.name: s for ni, s in zip(infos, raw, strict=True)}


def run(
    nodes: Sequence[Node],
    pods: Iterable[Pod],
    config: SchedulerConfig | None = None,
    seed: int = 0,
    explain: Iterable[str] = (),
) -> ScheduleResult:
    return Scheduler(nodes, pods, config, rng=random.Random(seed), explain=explain).run()


def config(text: str) -> SchedulerConfig:
    return load_cluster(text).config
