"""The ReplicaSet controller of ``kubeproof up``: kube-controller-manager's, as an extension.

Theory of operation
-------------------
An I/O shell, as `kubeproof.serve.kubelet` is: what to write is decided by
the pure functions below (`claim_pods`, `pod_from_template`,
`pods_to_delete`, `plan_replicaset`, `calculate_status`, `status_update`);
the shell feeds them the API core's objects and writes what they decided
through the API core (`ApiServer.handle`: authorization, admission,
validation), as kube 1.32's ``pkg/controller/replicaset`` does through its
clientset.

*Who.*  Every request is made as ``system:serviceaccount:kube-system:
replicaset-controller`` (kube-controller-manager's
``--use-service-account-credentials``), authorized by kube's bootstrap
ClusterRole ``system:controller:replicaset-controller`` and its binding to
that service account (`kubeproof.api.bootstrap`): replicasets get, list,
watch, update; replicasets/status update; pods list, watch, create, patch,
delete.  So pods are never read one by one (no ``get``) and the status is
written with ``PUT`` (``UpdateStatus``), not a patch.

*What it decides*, for each ReplicaSet (``syncReplicaSet``):

1. Its pods (``claimPods``, kube's ``PodControllerRefManager``), among the
   *active* pods of its namespace (not Succeeded or Failed, not being
   deleted): those whose controller ownerReference names its uid and that
   match its selector; an orphan (no controller reference) matching it is
   adopted with a strategic merge patch adding the controller reference
   (``blockOwnerDeletion: true``) and carrying the pod's uid; a pod it owns
   that no longer matches is released with a patch deleting the reference
   by uid (``$patch: delete``).  A ReplicaSet being deleted neither adopts
   nor releases.
2. Unless it is being deleted (``manageReplicas``): fewer pods than
   ``spec.replicas`` -> create the difference from ``spec.template``
   (``generateName: NAME-``, the template's labels, annotations and
   finalizers, a controller ownerReference), at most `BURST_REPLICAS` per
   pass, in kube's slow-start batches (1, 2, 4, ...; a batch with a failure
   ends the pass's creations); more -> delete the surplus, at most
   `BURST_REPLICAS` per pass, in kube's order (`deletion_order`).
3. ``status`` (``calculateStatus``): replicas (its pods), fullyLabeledReplicas
   (those carrying every label of the template), readyReplicas,
   availableReplicas (ready; ``minReadySeconds`` is taken as 0),
   observedGeneration, and the ``ReplicaFailure`` condition (FailedCreate /
   FailedDelete) while creating or deleting fails.  Written only when it
   changed (``updateReplicaSetStatus``'s steady-state check).

*Waiting.*  As the kubelet: it sleeps on the server's change signal, reads
pods and replicasets through watches opened through the API core (the
scheduler's `_Watch`, reopened and the cache replaced when it ends), and
looks again only at the ReplicaSets a change concerns (the changed one; for
a pod, the ReplicaSet its controller reference names and those of its
namespace whose selector matches its old or new labels).  Its writes are
visible to its watches by the next pass (the store hands a watcher
everything up to its current revision), which stands in for kube's
expectations: a pass never acts on a cache that misses its own writes.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import attrs
from attrs import frozen

from kubeproof.api import ApiRequest, ApiResponse, UserInfo
from kubeproof.api.selectors import LabelSelector, SelectorError, selector_from_match

from .core_client import CoreApi, core_request
from .events import EventRecorder
from .passes import run_passes
from .scheduler import _key, _message, _meta, _section, _Watch

if TYPE_CHECKING:
    from .app import Extension, RunningServer

__all__ = [
    "BURST_REPLICAS",
    "CONTROLLER_USER",
    "Claim",
    "ReplicaSetPlan",
    "ReplicaSetShell",
    "adopt_patch",
    "calculate_status",
    "claim_pods",
    "deletion_order",
    "is_active",
    "is_ready",
    "plan_replicaset",
    "pod_from_template",
    "pods_to_delete",
    "related_pods",
    "release_patch",
    "replicaset_extension",
    "slow_start_batches",
    "status_update",
]

log = logging.getLogger("kubeproof.serve.replicaset")

CONTROLLER_USER: Final = UserInfo(
    "system:serviceaccount:kube-system:replicaset-controller",
    ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"),
)
"""Who the controller is to the API server (its service account's user)."""

BURST_REPLICAS: Final = 500
"""kube's ``BurstReplicas``: at most this many creations or deletions per sync."""

SLOW_START_INITIAL_BATCH: Final = 1
"""kube's ``SlowStartInitialBatchSize``."""

POD_DELETION_COST: Final = "controller.kubernetes.io/pod-deletion-cost"

TERMINAL_PHASES: Final = ("Succeeded", "Failed")
PHASE_ORDINAL: Final = {"Pending": 0, "Unknown": 1, "Running": 2}
"""kube's ``podPhaseToOrdinal`` (any other phase counts as 0)."""

STRATEGIC: Final = "application/strategic-merge-patch+json"
MAX_NAME: Final = 253

Obj = Mapping[str, Any]


_Api = CoreApi


# --------------------------------------------------------------------------- pure decisions


def _labels(obj: Obj) -> Mapping[str, str]:
    labels = _meta(obj).get("labels")
    return labels if isinstance(labels, Mapping) else {}


def _uid(obj: Obj) -> str:
    return str(_meta(obj).get("uid") or "")


def _ns(obj: Obj) -> str:
    return str(_meta(obj).get("namespace") or "default")


def controller_ref(obj: Obj) -> Mapping[str, Any] | None:
    """The ownerReference with ``controller: true``, if any (``GetControllerOf``)."""
    for ref in _meta(obj).get("ownerReferences") or ():
        if isinstance(ref, Mapping) and ref.get("controller") is True:
            return ref
    return None


def is_active(pod: Obj) -> bool:
    """kube's ``IsPodActive``: not Succeeded or Failed, not being deleted."""
    return _section(pod, "status").get("phase") not in TERMINAL_PHASES and not _meta(pod).get(
        "deletionTimestamp"
    )


def _ready_condition(pod: Obj) -> Mapping[str, Any] | None:
    for c in _section(pod, "status").get("conditions") or ():
        if isinstance(c, Mapping) and c.get("type") == "Ready":
            return c
    return None


def is_ready(pod: Obj) -> bool:
    """kube's ``IsPodReady``: its Ready condition is True."""
    c = _ready_condition(pod)
    return c is not None and c.get("status") == "True"


def selector_of(rs: Obj) -> LabelSelector | None:
    """The ReplicaSet's selector; None when it has none or it cannot be read
    (kube skips such a ReplicaSet)."""
    spec = _section(_section(rs, "spec"), "selector")
    if not spec:
        return None
    try:
        return selector_from_match(spec)
    except SelectorError:
        return None


def _replicas(rs: Obj) -> int:
    r = _section(rs, "spec").get("replicas", 1)
    return r if isinstance(r, int) and not isinstance(r, bool) else 1


def owner_reference(rs: Obj) -> dict[str, Any]:
    """The controller reference a ReplicaSet puts on its pods (``NewControllerRef``)."""
    meta = _meta(rs)
    return {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "name": str(meta.get("name", "")),
        "uid": str(meta.get("uid", "")),
        "controller": True,
        "blockOwnerDeletion": True,
    }


@frozen
class Claim:
    """What ``claimPods`` makes of a namespace's active pods for one ReplicaSet."""

    owned: tuple[Obj, ...]
    """Its pods: those it controls and that match, and the orphans it adopts."""
    adopt: tuple[Obj, ...]
    """Orphans to adopt (also in ``owned``)."""
    release: tuple[Obj, ...]
    """Pods it controls that no longer match its selector."""


def claim_pods(rs: Obj, pods: Iterable[Obj]) -> Claim:
    """kube's ``ClaimPods`` over the *active* ones of ``pods`` (those of the
    ReplicaSet's namespace; others are skipped), in the order given."""
    selector = selector_of(rs)
    uid, ns = _uid(rs), _ns(rs)
    deleting = bool(_meta(rs).get("deletionTimestamp"))
    owned: list[Obj] = []
    adopt: list[Obj] = []
    release: list[Obj] = []
    for pod in pods:
        if _ns(pod) != ns or not is_active(pod):
            continue
        matches = selector is not None and selector.matches(_labels(pod))
        ref = controller_ref(pod)
        if ref is not None:
            if ref.get("uid") != uid:
                continue  # another controller's
            if matches:
                owned.append(pod)
            elif not deleting:
                release.append(pod)
            continue
        # An orphan (is_active: it is not being deleted).
        if deleting or not matches:
            continue
        owned.append(pod)
        adopt.append(pod)
    return Claim(tuple(owned), tuple(adopt), tuple(release))


def adopt_patch(rs: Obj, pod: Obj) -> dict[str, Any]:
    """The strategic merge patch adopting ``pod`` (``ownerRefControllerPatch``)."""
    return {"metadata": {"ownerReferences": [owner_reference(rs)], "uid": _uid(pod)}}


def release_patch(rs: Obj, pod: Obj) -> dict[str, Any]:
    """The strategic merge patch releasing ``pod``
    (``GenerateDeleteOwnerRefStrategicMergeBytes``)."""
    return {
        "metadata": {"uid": _uid(pod), "ownerReferences": [{"$patch": "delete", "uid": _uid(rs)}]}
    }


def pod_from_template(rs: Obj) -> dict[str, Any]:
    """The pod a ReplicaSet creates (``GetPodFromTemplate``): the template's
    labels, annotations, finalizers and spec, ``generateName: NAME-`` (just
    NAME when the dash would make it too long), a controller reference."""
    template = _section(_section(rs, "spec"), "template")
    tmeta = _meta(template)
    name = str(_meta(rs).get("name", ""))
    prefix = f"{name}-" if len(name) + 1 <= MAX_NAME else name
    meta: dict[str, Any] = {"generateName": prefix}
    for field in ("labels", "annotations"):
        if tmeta.get(field):
            meta[field] = dict(tmeta[field])
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    meta["ownerReferences"] = [owner_reference(rs)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": meta,
        "spec": copy.deepcopy(dict(_section(template, "spec"))),
    }


def slow_start_batches(count: int, initial: int = SLOW_START_INITIAL_BATCH) -> list[int]:
    """kube's ``slowStartBatch`` sizes for ``count`` calls: ``initial``, then
    doubling, the last one cut to what is left."""
    out, size, left = [], max(initial, 1), count
    while left > 0:
        n = min(size, left)
        out.append(n)
        left -= n
        size *= 2
    return out


# -- deletion order ---------------------------------------------------------------


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _nanos(later: datetime, earlier: datetime) -> int:
    d = later - earlier
    return (d.days * 86_400 + d.seconds) * 1_000_000_000 + d.microseconds * 1_000


def _log_rank_diff(t1: datetime, t2: datetime, now: datetime) -> int:
    """kube's ``logarithmicRankDiff``: floor(log2) of the ages in nanoseconds."""
    d1, d2 = _nanos(now, t1), _nanos(now, t2)
    r1 = int(math.log2(d1)) if d1 > 0 else -1
    r2 = int(math.log2(d2)) if d2 > 0 else -1
    return r1 - r2


def _after_or_zero(t1: datetime | None, t2: datetime | None) -> bool:
    """kube's ``afterOrZero``: a zero time counts as after any other."""
    if t1 is None or t2 is None:
        return t1 is None
    return t1 > t2


_COST = re.compile(r"-?[0-9]+")


def deletion_cost(pod: Obj) -> int:
    """The ``controller.kubernetes.io/pod-deletion-cost`` annotation; 0 when
    absent or invalid (``GetDeletionCostFromPodAnnotations``: the first
    character a minus sign or a digit other than 0, unless the value is "0";
    then an int32 in base 10)."""
    ann = _meta(pod).get("annotations")
    value = ann.get(POD_DELETION_COST) if isinstance(ann, Mapping) else None
    if not isinstance(value, str) or not _COST.fullmatch(value):
        return 0
    if value[0] == "0" and value != "0":
        return 0
    n = int(value)
    return n if -(2**31) <= n < 2**31 else 0


def _ready_time(pod: Obj) -> datetime | None:
    c = _ready_condition(pod)
    if c is None or c.get("status") != "True":
        return None
    return _time(c.get("lastTransitionTime"))


def _max_restarts(pod: Obj) -> int:
    counts = [
        int(c.get("restartCount") or 0)
        for c in _section(pod, "status").get("containerStatuses") or ()
        if isinstance(c, Mapping)
    ]
    return max(counts, default=0)


def _less(a: Obj, b: Obj, rank_a: int, rank_b: int, now: datetime | None) -> bool:
    """kube 1.32's ``ActivePodsWithRanks.Less`` (PodDeletionCost and
    LogarithmicScaleDown on, their defaults): True when ``a`` goes first."""
    na, nb = (
        str(_section(a, "spec").get("nodeName") or ""),
        str(_section(b, "spec").get("nodeName") or ""),
    )
    # 1. Unassigned < assigned.
    if na != nb and (not na or not nb):
        return not na
    # 2. Pending < Unknown < Running.
    pa = PHASE_ORDINAL.get(str(_section(a, "status").get("phase") or ""), 0)
    pb = PHASE_ORDINAL.get(str(_section(b, "status").get("phase") or ""), 0)
    if pa != pb:
        return pa < pb
    # 3. Not ready < ready.
    ra, rb = is_ready(a), is_ready(b)
    if ra != rb:
        return not ra
    # 4. Lower pod-deletion-cost < higher.
    ca, cb = deletion_cost(a), deletion_cost(b)
    if ca != cb:
        return ca < cb
    # 5. Doubled up (more related pods on its node) < not.
    if rank_a != rank_b:
        return rank_a > rank_b
    # 6. Ready for less time < more time (log2 buckets of the age, then uid).
    if ra and rb:
        ta, tb = _ready_time(a), _ready_time(b)
        if ta != tb:
            if now is None or ta is None or tb is None:
                return _after_or_zero(ta, tb)
            diff = _log_rank_diff(ta, tb, now)
            if diff == 0:
                return _uid(a) < _uid(b)
            return diff < 0
    # 7. More container restarts < fewer.
    xa, xb = _max_restarts(a), _max_restarts(b)
    if xa != xb:
        return xa > xb
    # 8. Newer < older (log2 buckets of the age, then uid); no timestamp first.
    ta, tb = _time(_meta(a).get("creationTimestamp")), _time(_meta(b).get("creationTimestamp"))
    if ta != tb:
        if now is None or ta is None or tb is None:
            return _after_or_zero(ta, tb)
        diff = _log_rank_diff(ta, tb, now)
        if diff == 0:
            return _uid(a) < _uid(b)
        return diff < 0
    return False


def related_pods(rs: Obj, replicasets: Iterable[Obj], pods: Iterable[Obj]) -> list[Obj]:
    """kube's ``getIndirectlyRelatedPods``: the pods matching the selector of
    any ReplicaSet (this one included) with the same controller as ``rs``
    (a Deployment's); none for a ReplicaSet without a controller."""
    ref = controller_ref(rs)
    if ref is None:
        return []
    pods = list(pods)
    seen: set[str] = set()
    out: list[Obj] = []
    for other in replicasets:
        oref = controller_ref(other)
        if oref is None or oref.get("uid") != ref.get("uid") or _ns(other) != _ns(rs):
            continue
        selector = selector_of(other)
        if selector is None:
            continue
        for pod in pods:
            if _ns(pod) == _ns(rs) and selector.matches(_labels(pod)) and _uid(pod) not in seen:
                seen.add(_uid(pod))
                out.append(pod)
    return out


def deletion_order(pods: Sequence[Obj], related: Iterable[Obj], now: str | None) -> list[Obj]:
    """``pods`` sorted as kube's ``getPodsToDelete`` sorts them, first to go
    first.  A pod's rank is the number of active ``related`` pods on its node
    (``getPodsRankedByRelatedPodsOnSameNode``).  Ties keep the given order."""
    on_node: dict[str, int] = {}
    for p in related:
        if is_active(p):
            node = str(_section(p, "spec").get("nodeName") or "")
            on_node[node] = on_node.get(node, 0) + 1
    ranked = [(p, on_node.get(str(_section(p, "spec").get("nodeName") or ""), 0)) for p in pods]
    when = _time(now)

    def cmp(x: tuple[Obj, int], y: tuple[Obj, int]) -> int:
        if _less(x[0], y[0], x[1], y[1], when):
            return -1
        if _less(y[0], x[0], y[1], x[1], when):
            return 1
        return 0

    return [p for p, _ in sorted(ranked, key=functools.cmp_to_key(cmp))]


def pods_to_delete(
    pods: Sequence[Obj], related: Iterable[Obj], count: int, now: str | None
) -> list[Obj]:
    """The first ``count`` of `deletion_order` (all of them, unsorted, when
    ``count`` covers them, as kube does)."""
    if count >= len(pods):
        return list(pods)
    return deletion_order(pods, related, now)[:count]


# -- the plan and the status -------------------------------------------------------


@frozen
class ReplicaSetPlan:
    """What one sync of a ReplicaSet writes, before its status."""

    claim: Claim
    create: int = 0
    """Pods to create from the template (at most `BURST_REPLICAS`)."""
    delete: tuple[Obj, ...] = ()
    """Pods to delete, in order (at most `BURST_REPLICAS`)."""

    @property
    def empty(self) -> bool:
        c = self.claim
        return not (c.adopt or c.release or self.create or self.delete)


def plan_replicaset(
    rs: Obj,
    pods: Iterable[Obj],
    related: Iterable[Obj] = (),
    now: str | None = None,
    burst: int = BURST_REPLICAS,
) -> ReplicaSetPlan:
    """``syncReplicaSet`` up to its status: `claim_pods`, then, unless the
    ReplicaSet is being deleted, ``manageReplicas``."""
    claim = claim_pods(rs, pods)
    if _meta(rs).get("deletionTimestamp"):
        return ReplicaSetPlan(claim)
    diff = len(claim.owned) - _replicas(rs)
    if diff < 0:
        return ReplicaSetPlan(claim, create=min(-diff, burst))
    if diff > 0:
        return ReplicaSetPlan(
            claim, delete=tuple(pods_to_delete(claim.owned, related, min(diff, burst), now))
        )
    return ReplicaSetPlan(claim)


def calculate_status(
    rs: Obj, owned: Sequence[Obj], now: str, manage_error: str | None = None
) -> dict[str, Any]:
    """kube's ``calculateStatus``: the ReplicaSet's status given its pods and
    the error, if any, of creating or deleting them (``minReadySeconds`` is
    taken as 0: a ready pod is available).  observedGeneration is left as it
    was (`status_update` sets it)."""
    status = copy.deepcopy(dict(_section(rs, "status")))
    template_labels = _labels(_section(_section(rs, "spec"), "template"))
    fully = ready = 0
    for pod in owned:
        labels = _labels(pod)
        if all(labels.get(k) == v for k, v in template_labels.items()):
            fully += 1
        if is_ready(pod):
            ready += 1
    conds = [c for c in status.get("conditions") or () if isinstance(c, Mapping)]
    failure = next((c for c in conds if c.get("type") == "ReplicaFailure"), None)
    if manage_error is not None and failure is None:
        diff = len(owned) - _replicas(rs)
        reason = "FailedCreate" if diff < 0 else "FailedDelete" if diff > 0 else ""
        conds.append(
            {
                "type": "ReplicaFailure",
                "status": "True",
                "lastTransitionTime": now,
                "reason": reason,
                "message": manage_error,
            }
        )
    elif manage_error is None and failure is not None:
        conds = [c for c in conds if c.get("type") != "ReplicaFailure"]
    if conds:
        status["conditions"] = conds
    else:
        status.pop("conditions", None)
    status["replicas"] = len(owned)
    status["fullyLabeledReplicas"] = fully
    status["readyReplicas"] = ready
    status["availableReplicas"] = ready
    return status


def status_update(rs: Obj, status: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ReplicaSet to ``PUT`` to ``replicasets/status`` for ``status``
    (with observedGeneration = generation), or None in the steady state
    (``updateReplicaSetStatus``: the counts, the generation and the
    conditions unchanged)."""
    old = _section(rs, "status")
    generation = _meta(rs).get("generation")
    fields = ("replicas", "fullyLabeledReplicas", "readyReplicas", "availableReplicas")
    if (
        all(int(old.get(f) or 0) == int(status.get(f) or 0) for f in fields)
        and generation == old.get("observedGeneration")
        and (old.get("conditions") or []) == (status.get("conditions") or [])
    ):
        return None
    out = copy.deepcopy(dict(rs))
    new_status = dict(status)
    if generation is not None:
        new_status["observedGeneration"] = generation
    out["status"] = new_status
    return out


# --------------------------------------------------------------------------- the shell


@frozen
class _As:
    """The API core, every request made as ``user`` (so that the scheduler's
    watch helper opens its watches as the controller)."""

    api: _Api
    user: UserInfo

    def handle(self, req: ApiRequest) -> ApiResponse:
        return self.api.handle(attrs.evolve(req, user=self.user))

    def now(self) -> str:
        return self.api.now()


class ReplicaSetShell:
    """The shell's state and its steps: `sync`, then `reconcile` of each
    ReplicaSet a change concerns; `run` loops them."""

    def __init__(self, api: _Api, *, notify: Callable[[], None] = lambda: None) -> None:
        self.api = _As(api, CONTROLLER_USER)
        self.notify = notify
        self.watches = {
            "pods": _Watch(self.api, "/api/v1/pods"),
            "replicasets": _Watch(self.api, "/apis/apps/v1/replicasets"),
        }
        self.pods: dict[str, dict[str, Obj]] = {}
        """Namespace -> pod key -> pod."""
        self.replicasets: dict[str, Obj] = {}
        self.dirty: set[str] = set()
        self.writes = 0
        self.errors = 0
        self.recorder = EventRecorder("replicaset-controller")

    # -- sync ------------------------------------------------------------------

    def sync(self) -> None:
        """Drains both watches into the cache (raises WatchRefused)."""
        for name, watch in self.watches.items():
            reset, events = watch.poll()
            on = self._on_pod if name == "pods" else self._on_replicaset
            if reset:
                seen = {_key(e["object"]) for e in events}
                for key in self._cached(name):
                    if key not in seen:
                        on(key, None)
            for e in events:
                obj = e["object"]
                on(_key(obj), obj if e["type"] != "DELETED" else None)

    def _cached(self, name: str) -> list[str]:
        if name == "pods":
            return [k for table in self.pods.values() for k in table]
        return list(self.replicasets)

    def _concerned(self, pod: Obj) -> Iterable[str]:
        """The ReplicaSets a pod's state concerns: its controller's, and those
        of its namespace whose selector matches it."""
        ns = _ns(pod)
        ref = controller_ref(pod)
        for key, rs in self.replicasets.items():
            if _ns(rs) != ns:
                continue
            if ref is not None and ref.get("uid") == _uid(rs):
                yield key
                continue
            selector = selector_of(rs)
            if selector is not None and selector.matches(_labels(pod)):
                yield key

    def _on_pod(self, key: str, obj: Obj | None) -> None:
        ns = key.split("/", 1)[0] if "/" in key else "default"
        table = self.pods.setdefault(ns, {})
        old = table.pop(key, None)
        if old is not None:
            self.dirty.update(self._concerned(old))
        if obj is not None:
            table[key] = obj
            self.dirty.update(self._concerned(obj))
        if not table:
            del self.pods[ns]

    def _on_replicaset(self, key: str, obj: Obj | None) -> None:
        if obj is None:
            # Its pods go with it: the API core deletes an owner's dependents.
            self.replicasets.pop(key, None)
            self.dirty.discard(key)
            return
        self.replicasets[key] = obj
        self.dirty.add(key)

    # -- writes ----------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        content_type: str | None = None,
    ) -> ApiResponse:
        resp = core_request(self.api, method, path, body, content_type)
        if resp.status < 400:
            self.writes += 1
            self.notify()
        return resp

    def _refused(self, what: str, resp: ApiResponse) -> None:
        if resp.status in (404, 409, 422):
            # Stale: the pod or the ReplicaSet changed meanwhile; the watch brings it.
            log.info("%s: %s", what, _message(resp))
        else:
            self.errors += 1
            log.warning("%s: %s", what, _message(resp))

    async def reconcile(self, key: str) -> None:
        """One ``syncReplicaSet`` of the ReplicaSet ``key`` from the cache."""
        rs = self.replicasets.get(key)
        if rs is None or selector_of(rs) is None:
            return
        ns, name = _ns(rs), str(_meta(rs).get("name", ""))
        now = self.api.now()
        pods = sorted(self.pods.get(ns, {}).values(), key=_key)
        siblings = [r for r in self.replicasets.values() if _ns(r) == ns]
        plan = plan_replicaset(rs, pods, related_pods(rs, siblings, pods), now)
        owned = list(plan.claim.owned)
        pods_path = f"/api/v1/namespaces/{ns}/pods"
        stale = False
        for pod in plan.claim.adopt:
            pod_name = str(_meta(pod).get("name", ""))
            resp = self._request(
                "PATCH", f"{pods_path}/{pod_name}", adopt_patch(rs, pod), STRATEGIC
            )
            if resp.status >= 400:
                self._refused(f"cannot adopt {ns}/{pod_name} into {key}", resp)
                owned.remove(pod)
                stale = True
            await asyncio.sleep(0)
        for pod in plan.claim.release:
            pod_name = str(_meta(pod).get("name", ""))
            resp = self._request(
                "PATCH", f"{pods_path}/{pod_name}", release_patch(rs, pod), STRATEGIC
            )
            if resp.status >= 400 and resp.status != 404:
                self._refused(f"cannot release {ns}/{pod_name} from {key}", resp)
            await asyncio.sleep(0)
        error: str | None = None
        if stale:
            # The counts assumed the adoption: decide again from the watch.
            self.dirty.add(key)
        elif plan.create:
            error = await self._create(rs, plan.create)
        elif plan.delete:
            error = await self._delete(rs, plan.delete)
        body = status_update(rs, calculate_status(rs, owned, now, error))
        if body is not None:
            path = f"/apis/apps/v1/namespaces/{ns}/replicasets/{name}/status"
            resp = self._request("PUT", path, body)
            if resp.status >= 400:
                self._refused(f"cannot update the status of {key}", resp)
        if error is not None:
            self.dirty.add(key)  # try again on the next change

    async def _create(self, rs: Obj, count: int) -> str | None:
        """Creates ``count`` pods in slow-start batches; the first error, if any."""
        ns = _ns(rs)
        pod = pod_from_template(rs)
        for batch in slow_start_batches(count):
            error = None
            for _ in range(batch):
                resp = self._request("POST", f"/api/v1/namespaces/{ns}/pods", pod)
                if resp.status >= 400:
                    error = error or _message(resp)
                    self._refused(f"cannot create a pod for {_key(rs)}", resp)
                    self._event(rs, "Warning", "FailedCreate", f"Error creating: {_message(resp)}")
                else:
                    made = _meta(resp.body or {}).get("name", "")
                    self._event(rs, "Normal", "SuccessfulCreate", f"Created pod: {made}")
                await asyncio.sleep(0)
            if error is not None:
                return error  # kube skips the later batches
        return None

    async def _delete(self, rs: Obj, pods: Sequence[Obj]) -> str | None:
        error = None
        for pod in pods:
            meta = _meta(pod)
            path = f"/api/v1/namespaces/{_ns(pod)}/pods/{meta.get('name', '')}"
            resp = self._request("DELETE", path)
            if resp.status >= 400 and resp.status != 404:
                error = error or _message(resp)
                self._refused(f"cannot delete {_key(pod)}", resp)
                self._event(rs, "Warning", "FailedDelete", f"Error deleting: {_message(resp)}")
            elif resp.status < 400:
                self._event(
                    rs, "Normal", "SuccessfulDelete", f"Deleted pod: {meta.get('name', '')}"
                )
            await asyncio.sleep(0)
        return error

    def _event(self, rs: Obj, typ: str, reason: str, message: str) -> None:
        """An Event on the ReplicaSet, as kube's RealPodControl records one."""
        about = {**rs, "kind": "ReplicaSet", "apiVersion": "apps/v1"}
        event = self.recorder.body(about, typ, reason, message, self.api.now())
        resp = self._request("POST", f"/api/v1/namespaces/{_ns(rs)}/events", event)
        if resp.status >= 400:
            log.info("cannot record event %s for %s: %s", reason, _key(rs), _message(resp))

    # -- the loop --------------------------------------------------------------

    async def step(self) -> None:
        """One pass: the watches, then each ReplicaSet a change concerns."""
        self.sync()
        keys = sorted(self.dirty)
        self.dirty.clear()
        for key in keys:
            await self.reconcile(key)

    async def run(self, changed: Callable[[], asyncio.Event]) -> None:
        """Passes until cancelled; between them, waits for ``changed()`` to be set."""
        await run_passes(self, "replicaset controller", changed, log)

    def recover(self) -> None:
        # A failed pass was a bug: look again at every ReplicaSet on the next change.
        self.dirty.update(self.replicasets)

    def close(self) -> None:
        for w in self.watches.values():
            w.close()


def replicaset_extension() -> Extension:
    """The `kubeproof.serve.app.Extension` that runs the ReplicaSet controller in a server."""

    async def run_replicaset_controller(server: RunningServer) -> None:
        shell = ReplicaSetShell(server.api, notify=server.notify_changed)
        signal = server.http.signal
        await shell.run(lambda: signal.current)

    return run_replicaset_controller
