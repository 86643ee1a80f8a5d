"""TaintToleration (kube-scheduler v1.32).

Theory of operation
-------------------
*Filter*: the first of the node's taints with effect NoSchedule or NoExecute
that no toleration of the pod tolerates rejects the node,
UnschedulableAndUnresolvable, "node(s) had untolerated taint {KEY: VALUE}".

*Score* (weight 3): the number of the node's PreferNoSchedule taints not
tolerated by the pod's tolerations whose effect is empty or
PreferNoSchedule; normalized by `DefaultNormalizeScore` reversed
(``100 - 100 * s // max``; all zero gives 100 everywhere), so fewer
intolerable taints is better.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..config import PluginArgs
from ..framework import (
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    Status,
    default_normalize_score,
    unresolvable,
)
from ..model import Toleration
from ..selectors import find_untolerated_taint, tolerates_any

__all__ = ["TaintToleration"]

DO_NOT_SCHEDULE: Final = frozenset({"NoSchedule", "NoExecute"})


class TaintToleration:
    name = "TaintToleration"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        self.handle = handle

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if not node.taints:
            return None
        taint = find_untolerated_taint(node.taints, pod.pod.tolerations, DO_NOT_SCHEDULE)
        if taint is None:
            return None
        return unresolvable(f"node(s) had untolerated taint {{{taint.key}: {taint.value}}}")

    def filter_many(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> dict[int, Status]:
        out: dict[int, Status] = {}
        if not self.handle.snapshot.any_taints:
            return out
        for i, ni in enumerate(nodes):
            if ni.taints:
                st = self.filter(state, pod, ni)
                if st is not None:
                    out[i] = st
        return out

    def _prefer_tolerations(self, pod: PodInfo) -> tuple[Toleration, ...]:
        return tuple(t for t in pod.pod.tolerations if t.effect in ("", "PreferNoSchedule"))

    def pre_score(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> None:
        state.write(self.name + "/preScore", self._prefer_tolerations(pod))

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        tols = state.read(self.name + "/preScore")
        if tols is None:
            tols = self._prefer_tolerations(pod)
        return sum(1 for t in node.prefer_no_schedule if not tolerates_any(tols, t))

    def score_many(self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]) -> list[int]:
        if not self.handle.snapshot.any_prefer_no_schedule:
            return [0] * len(nodes)
        return [self.score(state, pod, ni) if ni.prefer_no_schedule else 0 for ni in nodes]

    def normalize_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]
    ) -> None:
        default_normalize_score(scores, reverse=True)
