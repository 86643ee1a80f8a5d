"""Running a profile's plugins at each extension point (kube's frameworkImpl, v1.32).

Theory of operation
-------------------
A `Framework` is one profile made concrete: each plugin the profile names is
instantiated once from `plugins.REGISTRY`, then listed at every extension
point the profile gives it, in the profile's order.  The framework is also
the plugins' `Handle`: it exposes the shared `ClusterState` (snapshot,
nominated pods, RNG, PodDisruptionBudgets) and the operations preemption
needs (filtering with nominated pods, the PreFilter AddPod/RemovePod
extensions).

Rules kept from kube:

* PreFilter: a Skip status marks the plugin's Filter as skipped for this pod;
  an Unschedulable status is remembered and the other PreFilter plugins
  still run; UnschedulableAndUnresolvable stops at once; the node-name
  results of all plugins are intersected.
* Filter: the plugins run in order and the first non-success status is the
  node's verdict (tagged with the plugin's name).
* Filter with nominated pods: if pods of equal or higher priority are
  nominated to the node, the pod must fit both with them added and without.
* Score: Skip at PreScore removes the plugin for this pod; each plugin's
  scores are normalized (if it normalizes), must lie in 0..100, and are
  multiplied by the plugin's weight; the node's total is the sum.  With no
  score plugin every node scores 1.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from itertools import repeat
from operator import add, mul
from typing import Any

from .config import Profile
from .framework import (
    MAX_NODE_SCORE,
    MIN_NODE_SCORE,
    CycleState,
    NodeInfo,
    PodInfo,
    PostFilterResult,
    PreFilterResult,
    Snapshot,
    Status,
    StatusCode,
)
from .load import PodDisruptionBudget
from .plugins import REGISTRY

__all__ = ["ClusterState", "Framework", "PluginScores", "SchedulingError"]


class SchedulingError(RuntimeError):
    """A plugin returned an Error status or an out-of-range score."""


class ClusterState:
    """What every profile shares: nodes with their pods, nominations, RNG, PDBs."""

    def __init__(
        self,
        snapshot: Snapshot,
        rng: random.Random,
        pdbs: Sequence[PodDisruptionBudget] = (),
    ) -> None:
        self.snapshot = snapshot
        self.rng = rng
        self.pdbs = tuple(pdbs)
        self.nominated: dict[str, list[PodInfo]] = {}
        """node name -> pods nominated to it by preemption (kube's nominator)."""

    def nominate(self, pi: PodInfo, node_name: str) -> None:
        self.unnominate(pi)
        self.nominated.setdefault(node_name, []).append(pi)

    def unnominate(self, pi: PodInfo) -> None:
        for name, pods in list(self.nominated.items()):
            kept = [p for p in pods if p.key != pi.key]
            if len(kept) != len(pods):
                if kept:
                    self.nominated[name] = kept
                else:
                    del self.nominated[name]


PluginScores = dict[str, list[int]]
"""plugin name -> weighted, normalized scores aligned with the scored nodes."""


class Framework:
    """One profile's plugins, ready to run."""

    def __init__(self, profile: Profile, cluster: ClusterState) -> None:
        self.profile = profile
        self.cluster = cluster
        self.instances: dict[str, Any] = {}
        for point in profile.points.values():
            for name in point:
                if name not in self.instances:
                    self.instances[name] = REGISTRY[name](profile.arg(name), self)

        def at(point: str, method: str) -> list[Any]:
            out = []
            for name in profile.plugins_at(point):
                plugin = self.instances[name]
                if not hasattr(plugin, method):
                    raise TypeError(f"plugin {name} does not implement {point}")
                out.append(plugin)
            return out

        self.pre_enqueue_plugins = at("preEnqueue", "pre_enqueue")
        self.pre_filter_plugins = at("preFilter", "pre_filter")
        self.filter_plugins = at("filter", "filter")
        self.post_filter_plugins = at("postFilter", "post_filter")
        self.pre_score_plugins = at("preScore", "pre_score")
        self.score_plugins = at("score", "score")
        self.reserve_plugins = at("reserve", "reserve")
        self.permit_plugins = at("permit", "permit")
        self.bind_plugins = at("bind", "bind")
        self.weights: Mapping[str, int] = profile.weights

    # -- Handle ------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self.cluster.snapshot

    @property
    def rng(self) -> random.Random:
        return self.cluster.rng

    @property
    def pdbs(self) -> Sequence[PodDisruptionBudget]:
        return self.cluster.pdbs

    def run_pre_filter_add_pod(
        self, state: CycleState, pod: PodInfo, added: PodInfo, node: NodeInfo
    ) -> None:
        for pl in self.pre_filter_plugins:
            if pl.name not in state.skip_filter and hasattr(pl, "add_pod"):
                pl.add_pod(state, pod, added, node)

    def run_pre_filter_remove_pod(
        self, state: CycleState, pod: PodInfo, removed: PodInfo, node: NodeInfo
    ) -> None:
        for pl in self.pre_filter_plugins:
            if pl.name not in state.skip_filter and hasattr(pl, "remove_pod"):
                pl.remove_pod(state, pod, removed, node)

    # -- PreEnqueue --------------------------------------------------------

    def run_pre_enqueue(self, pod: PodInfo) -> Status | None:
        for pl in self.pre_enqueue_plugins:
            st: Status | None = pl.pre_enqueue(pod)
            if st is not None:
                return st.with_plugin(pl.name)
        return None

    # -- PreFilter ---------------------------------------------------------

    def run_pre_filter(
        self, state: CycleState, pod: PodInfo
    ) -> tuple[PreFilterResult | None, Status | None, list[str]]:
        """Returns (node-name narrowing, status, plugins that narrowed)."""
        result: PreFilterResult | None = None
        narrowing: list[str] = []
        returned: Status | None = None
        for pl in self.pre_filter_plugins:
            res, st = pl.pre_filter(state, pod)
            if st is not None and st.code == StatusCode.Skip:
                state.skip_filter.add(pl.name)
                continue
            if st is not None:
                st = st.with_plugin(pl.name)
                if st.code == StatusCode.UnschedulableAndUnresolvable:
                    return None, st, narrowing
                if st.code == StatusCode.Unschedulable:
                    returned = st
                    continue
                raise SchedulingError(f"running PreFilter plugin {pl.name}: {st.message}")
            if res is not None and res.node_names is not None:
                narrowing.append(pl.name)
                result = res if result is None else result.merge(res)
                if result.node_names is not None and not result.node_names:
                    names = sorted(narrowing)
                    msg = (
                        f"node(s) didn't satisfy plugin {names[0]}"
                        if len(names) == 1
                        else f"node(s) didn't satisfy plugin(s) [{' '.join(names)}] simultaneously"
                    )
                    return (
                        result,
                        Status(StatusCode.UnschedulableAndUnresolvable, (msg,)),
                        narrowing,
                    )
        return result, returned, narrowing

    # -- Filter ------------------------------------------------------------

    def active_filters(self, state: CycleState) -> list[Any]:
        return [pl for pl in self.filter_plugins if pl.name not in state.skip_filter]

    def run_filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        for pl in self.filter_plugins:
            if pl.name in state.skip_filter:
                continue
            st: Status | None = pl.filter(state, pod, node)
            if st is not None:
                if st.code == StatusCode.Error:
                    raise SchedulingError(f"running Filter plugin {pl.name}: {st.message}")
                return st.with_plugin(pl.name)
        return None

    def run_filter_with_nominated(
        self, state: CycleState, pod: PodInfo, node: NodeInfo
    ) -> Status | None:
        """`RunFilterPluginsWithNominatedPods`."""
        nominated = [
            p
            for p in self.cluster.nominated.get(node.name, ())
            if p.key != pod.key and p.priority >= pod.priority
        ]
        if nominated:
            state2 = state.clone()
            node2 = node.clone()
            for p in nominated:
                node2.add_pod(p)
                self.run_pre_filter_add_pod(state2, pod, p, node2)
            st = self.run_filter(state2, pod, node2)
            if st is not None:
                return st
        return self.run_filter(state, pod, node)

    def filter_nodes(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> list[Status | None]:
        """Filter verdicts for `nodes`, in order (the batch form of the per-node loop)."""
        verdicts: list[Status | None] = [None] * len(nodes)
        nominated = self.cluster.nominated
        alive = list(range(len(nodes)))
        batch: Sequence[NodeInfo] = nodes
        if nominated:
            # Nodes with nominated pods take the exact per-node path.
            rest = []
            for i in alive:
                if nodes[i].name in nominated:
                    verdicts[i] = self.run_filter_with_nominated(state, pod, nodes[i])
                else:
                    rest.append(i)
            if len(rest) != len(alive):
                alive = rest
                batch = [nodes[i] for i in alive]
        skip = state.skip_filter
        for pl in self.filter_plugins:
            if not alive:
                break
            if pl.name in skip:
                continue
            many = getattr(pl, "filter_many", None)
            if many is not None:
                failures: dict[int, Status] = many(state, pod, batch)
            else:
                failures = {}
                f = pl.filter
                for j, ni in enumerate(batch):
                    st = f(state, pod, ni)
                    if st is not None:
                        failures[j] = st
            if failures:
                name = pl.name
                for j, st in failures.items():
                    if st.code == StatusCode.Error:
                        raise SchedulingError(f"running Filter plugin {name}: {st.message}")
                    verdicts[alive[j]] = st if st.plugin == name else st.with_plugin(name)
                alive = [i for j, i in enumerate(alive) if j not in failures]
                batch = [nodes[i] for i in alive]
        return verdicts

    # -- PostFilter --------------------------------------------------------

    def run_post_filter(
        self, state: CycleState, pod: PodInfo, statuses: Mapping[str, Status]
    ) -> tuple[PostFilterResult | None, Status | None]:
        """The first plugin that makes the pod schedulable wins; else the last status."""
        last: Status | None = None
        result: PostFilterResult | None = None
        for pl in self.post_filter_plugins:
            res, st = pl.post_filter(state, pod, statuses)
            if st is None:
                return res, None
            if st.code == StatusCode.Error:
                raise SchedulingError(f"running PostFilter plugin {pl.name}: {st.message}")
            if st.code == StatusCode.UnschedulableAndUnresolvable:
                return res, st.with_plugin(pl.name)
            last = st.with_plugin(pl.name)
            result = res
        return result, last

    # -- Score -------------------------------------------------------------

    def run_pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> None:
        for pl in self.pre_score_plugins:
            st = pl.pre_score(state, pod, nodes)
            if st is None:
                continue
            if st.code == StatusCode.Skip:
                state.skip_score.add(pl.name)
                continue
            raise SchedulingError(f"running PreScore plugin {pl.name}: {st.message}")

    def run_score(
        self,
        state: CycleState,
        pod: PodInfo,
        nodes: Sequence[NodeInfo],
        detail: PluginScores | None = None,
    ) -> list[int]:
        """Total weighted scores of `nodes`; per-plugin weighted scores into `detail`."""
        if not self.score_plugins:
            return [1] * len(nodes)
        totals = [0] * len(nodes)
        for pl in self.score_plugins:
            if pl.name in state.skip_score:
                continue
            many = getattr(pl, "score_many", None)
            if many is not None:
                scores: list[int] = many(state, pod, nodes)
            else:
                f = pl.score
                scores = [f(state, pod, ni) for ni in nodes]
            norm = getattr(pl, "normalize_score", None)
            if norm is not None:
                norm(state, pod, nodes, scores)
            if not scores:
                continue
            lo, hi = min(scores), max(scores)
            if lo < MIN_NODE_SCORE or hi > MAX_NODE_SCORE:
                raise SchedulingError(
                    f"plugin {pl.name!r} returns an invalid score {lo}..{hi},"
                    f" it should be in the range of [{MIN_NODE_SCORE}, {MAX_NODE_SCORE}]"
                    " after normalizing"
                )
            w = self.weights.get(pl.name, 1)
            if w != 1:
                scores = list(map(mul, scores, repeat(w)))
            if detail is not None:
                detail[pl.name] = scores
            if hi != 0:  # an all-zero column changes no total
                totals = list(map(add, totals, scores))
        return totals

    # -- Reserve, Permit, Bind --------------------------------------------

    def run_reserve(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        for i, pl in enumerate(self.reserve_plugins):
            st: Status | None = pl.reserve(state, pod, node)
            if st is not None:
                for done in reversed(self.reserve_plugins[: i + 1]):
                    done.unreserve(state, pod, node)
                return st.with_plugin(pl.name)
        return None

    def run_unreserve(self, state: CycleState, pod: PodInfo, node: str) -> None:
        for pl in reversed(self.reserve_plugins):
            pl.unreserve(state, pod, node)

    def run_permit(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        for pl in self.permit_plugins:
            st: Status | None = pl.permit(state, pod, node)
            if st is None:
                continue
            if st.code == StatusCode.Wait:
                # Waiting needs a clock; this core has none, so Wait is a rejection.
                return Status(StatusCode.Unschedulable, ("permit Wait is not supported",), pl.name)
            return st.with_plugin(pl.name)
        return None

    def run_bind(self, state: CycleState, pod: PodInfo, node: str) -> Status | None:
        for pl in self.bind_plugins:
            st: Status | None = pl.bind(state, pod, node)
            if st is not None and st.code == StatusCode.Skip:
                continue
            return None if st is None else st.with_plugin(pl.name)
        return Status(StatusCode.Error, ("no bind plugin bound the pod",))
