"""NodeAffinity: nodeSelector and node affinity (kube-scheduler v1.32).

Theory of operation
-------------------
*PreFilter*: Skip when the pod has no nodeSelector, no required node
affinity and the profile adds none.  When every required term names nodes
by ``matchFields metadata.name In``, the result narrows the candidates to
those names (a term's names intersected, terms unioned); an empty
narrowing is unresolvable ("pod affinity terms conflict").

*Filter*: the pod's ``nodeSelector`` (every label equal) AND its required
terms (ORed; each term's requirements ANDed) must match the node, else
UnschedulableAndUnresolvable "node(s) didn't match Pod's node affinity/selector".
The profile's ``addedAffinity`` is checked first ("node(s) didn't match
scheduler-enforced node affinity").

*Score* (weight 2): the sum of the weights of the preferred terms (the pod's
and the profile's added ones) that match the node; normalized by
`DefaultNormalizeScore` (``100 * s // max``).  PreScore Skips when there are
no preferred terms.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ..config import NodeAffinityArgs, PluginArgs
from ..framework import (
    SKIP,
    CycleState,
    Handle,
    NodeInfo,
    PodInfo,
    PreFilterResult,
    Status,
    StatusCode,
    default_normalize_score,
    unresolvable,
)
from ..model import PreferredSchedulingTerm
from ..selectors import NodeSelectorMatcher, term_matches

__all__ = ["NodeAffinity"]

ERR_REASON_POD = "node(s) didn't match Pod's node affinity/selector"
ERR_REASON_ENFORCED = "node(s) didn't match scheduler-enforced node affinity"
ERR_REASON_CONFLICT = "pod affinity terms conflict"
_POD: Final = Status(StatusCode.UnschedulableAndUnresolvable, (ERR_REASON_POD,), "NodeAffinity")
_ENFORCED: Final = Status(
    StatusCode.UnschedulableAndUnresolvable, (ERR_REASON_ENFORCED,), "NodeAffinity"
)


class NodeAffinity:
    name = "NodeAffinity"

    def __init__(self, args: PluginArgs | None, handle: Handle) -> None:
        a = args if isinstance(args, NodeAffinityArgs) else NodeAffinityArgs()
        added = a.added_affinity
        self.added_required = (
            NodeSelectorMatcher(added.required)
            if added is not None and added.required is not None
            else None
        )
        self.added_preferred: tuple[PreferredSchedulingTerm, ...] = (
            added.preferred if added is not None else ()
        )

    # -- filter ------------------------------------------------------------

    def pre_filter(
        self, state: CycleState, pod: PodInfo
    ) -> tuple[PreFilterResult | None, Status | None]:
        na = pod.pod.affinity.node_affinity if pod.pod.affinity else None
        required = na.required if na is not None else None
        if required is None and self.added_required is None and not pod.pod.node_selector:
            return None, SKIP
        if required is None or not required.terms:
            return None, None
        names: set[str] | None = None
        for term in required.terms:
            term_names: set[str] | None = None
            for r in term.match_fields:
                if r.key == "metadata.name" and r.operator == "In":
                    vals = set(r.values)
                    term_names = vals if term_names is None else term_names & vals
            if term_names is None:
                # A term without a name requirement admits every node.
                return None, None
            names = term_names if names is None else names | term_names
        if names is not None and not names:
            return None, unresolvable(ERR_REASON_CONFLICT)
        return (PreFilterResult(frozenset(names)) if names else None), None

    def filter(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> Status | None:
        if self.added_required is not None and not self.added_required.matches(node.node):
            return _ENFORCED
        if not pod.required_affinity.matches(node.node):
            return _POD
        return None

    # -- score -------------------------------------------------------------

    def _preferred(self, pod: PodInfo) -> tuple[PreferredSchedulingTerm, ...]:
        na = pod.pod.affinity.node_affinity if pod.pod.affinity else None
        own = na.preferred if na is not None else ()
        return tuple(t for t in (*self.added_preferred, *own) if t.weight)

    def pre_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo]
    ) -> Status | None:
        terms = self._preferred(pod)
        if not terms:
            return SKIP
        state.write(self.name + "/preScore", terms)
        return None

    def score(self, state: CycleState, pod: PodInfo, node: NodeInfo) -> int:
        terms = state.read(self.name + "/preScore")
        if terms is None:
            terms = self._preferred(pod)
        return sum(t.weight for t in terms if term_matches(t.preference, node.node))

    def normalize_score(
        self, state: CycleState, pod: PodInfo, nodes: Sequence[NodeInfo], scores: list[int]
    ) -> None:
        default_normalize_score(scores, reverse=False)
