"""The scheduler of ``kubeproof up``: kube-scheduler's loop around the pure `kubeproof.sched`.

Theory of operation
-------------------
An I/O shell.  Every placement, every failure message and every preemption
is decided by the pure core (`kubeproof.sched.Scheduler`); this module feeds
it the cluster as the API core holds it and carries out what it decided,
through the API core (`ApiServer.handle`, the same path an HTTP request
takes: authorization, admission, validation), as the user
``system:kube-scheduler`` -- authorized by kube's bootstrap ClusterRole and
ClusterRoleBinding of that name (`kubeproof.api.bootstrap`).

*Informers.*  One watch per collection the scheduler reads (pods, nodes,
namespaces, services, apps/v1 replicasets), opened through the API core
with ``?watch=true`` and no resourceVersion: the current objects arrive
first as ADDED, then every change.  A watch that ends (410 Expired after a
compaction) is reopened and its cache replaced by what the new one lists.
Nodes and pods are parsed into the model (`kubeproof.sched.load`) once per
resourceVersion; a pod also gets the labels of its namespace (for
``namespaceSelector``) and kube's ``DefaultSelector`` (the selectors of the
Services selecting it and of its controlling ReplicaSet, for the default
topology spread constraints).

*Waiting.*  The shell sleeps on the server's change signal, the one that
wakes HTTP watch streams: every write through HTTP sets it, and so does every
extension that calls `RunningServer.notify_changed` (this one does after its
own writes).  It takes the signal before draining its watches, so a change
that lands while it works wakes it again.  There is no timer and no polling.

*The core is kept between passes*, as kube-scheduler keeps its cache and
queue: one `Scheduler` holds the nodes, the running pods and the pending
pods it was given, bound or parked.  A pass, after draining the watches:

1. Pending pods: no ``spec.nodeName``, ``spec.schedulerName`` one of the
   profiles' (``default-scheduler`` unless ``--scheduler-config`` says
   otherwise), not being deleted, phase neither Succeeded nor Failed.
   Running pods: the others with a node, except terminal ones (the filter
   of kube-scheduler's pod informer); terminating pods still count.
2. If the core saw the cluster as it is -- no node was added, changed or
   removed, no running pod appeared, changed, ended or went away, no
   namespace, service or replicaset changed, and every pending pod it holds
   is still pending and unchanged (spec, labels, nominatedNodeName) -- the
   new pending pods are added to it.  The shell's own bindings and
   preemptions are no such change: the core made them.  Otherwise a new core
   is built from the nodes, the running pods and *every* pending pod, so
   each unschedulable pod is tried again.  This stands in for kube's
   cluster events: a pod is retried at once on any of them; kube's per-pod
   backoff (1 s to 10 s), its finer per-plugin hints for external events
   and its 5-minute flush of unschedulable pods are not modelled (the core
   is deterministic: with nothing changed, a retry answers the same).
3. `Scheduler.run`.  Pods are added in creation order, so that its
   PrioritySort queue pops them by priority, then creation time, as kube's
   does.  Within the core, parked pods return to the queue on its queueing
   hints (a bound pod matching their required affinity or spread selector),
   across passes too, since the core is kept.
4. The effects of what the run decided, in this order, yielding to the
   event loop between writes:

   ==================  ====================================================
   the core decided     the shell writes
   ==================  ====================================================
   preempt a victim     ``DisruptionTarget`` condition (PreemptionByScheduler)
                        on ``pods/status``; ``DELETE`` with a uid
                        precondition and grace 0 (the core models victims as
                        gone at once, so the pod must not linger; kube
                        deletes gracefully and waits); a ``Preempted`` event
   bind                 a ``v1.Binding`` to ``pods/binding``; a ``Scheduled``
                        event ("Successfully assigned NS/POD to NODE")
   unschedulable        ``PodScheduled=False``, reason ``Unschedulable``,
                        the core's message ("0/3 nodes are available: ...")
                        on ``pods/status`` when the pod's condition differs,
                        with ``status.nominatedNodeName`` when it changed; a
                        ``FailedScheduling`` Warning event.  Both once per
                        outcome: a retry with the same message and the same
                        pod writes nothing (kube records an event per try)
   ==================  ====================================================

A binding refused with 409 or 404 (the pod was bound meanwhile by someone
else, is being deleted, or is gone) means the model was stale: the shell
stops applying the pass, drops the core and runs another pass from its
watches at once; the binding subresource's compare-and-set guarantees that
no pod is ever bound twice.  Any other refusal marks the pod
``SchedulerError`` (as does a pod the model cannot read) and is retried on
the next change.  Events are core/v1 Events as kube's event recorder writes
them when the server has no events.k8s.io API.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import attrs
import yaml
from attrs import frozen

from kubeproof.api import ApiRequest, ApiResponse, UserInfo
from kubeproof.sched import (
    FrozenMap,
    InputError,
    LabelSelector,
    LabelSelectorRequirement,
    Node,
    Pod,
    Scheduler,
    SchedulerConfig,
    load_cluster,
)
from kubeproof.sched.load import parse_label_selector, parse_node, parse_pod

from .core_client import CoreApi, core_request
from .events import EventRecorder

if TYPE_CHECKING:
    from .app import Extension, RunningServer

__all__ = [
    "SCHEDULER_USER",
    "Plan",
    "SchedulerShell",
    "load_scheduler_config",
    "scheduler_extension",
]

log = logging.getLogger("kubeproof.serve.scheduler")

SCHEDULER_USER: Final = UserInfo("system:kube-scheduler", ("system:authenticated",))
"""Who the shell is to the API server (kube-scheduler's client certificate CN)."""

TERMINAL_PHASES: Final = ("Succeeded", "Failed")
MAX_WATCH_REOPENS: Final = 3

WATCHED: Final = (
    ("pods", "/api/v1/pods"),
    ("nodes", "/api/v1/nodes"),
    ("namespaces", "/api/v1/namespaces"),
    ("services", "/api/v1/services"),
    ("replicasets", "/apis/apps/v1/replicasets"),
)

Obj = Mapping[str, Any]


_Api = CoreApi


class WatchRefused(Exception):
    """The API core would not open a watch (RBAC changed, say)."""


# --------------------------------------------------------------------------- configuration


def load_scheduler_config(path: Path) -> SchedulerConfig:
    """Reads a KubeSchedulerConfiguration file (``--scheduler-config``) with the
    sched loader; a ValueError's message names the file and what is wrong."""
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a text file") from None
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        raise ValueError(f"{path}: not valid YAML: {e}") from None
    kinds = [d.get("kind") if isinstance(d, Mapping) else type(d).__name__ for d in docs]
    if kinds != ["KubeSchedulerConfiguration"]:
        found = ", ".join(str(k) for k in kinds) or "nothing"
        raise ValueError(f"{path}: expected one KubeSchedulerConfiguration, found {found}")
    try:
        return load_cluster(text).config
    except InputError as e:
        raise ValueError(f"{path}: {e}") from None


# --------------------------------------------------------------------------- watches


class _Watch:
    """One collection watched through the API core."""

    def __init__(self, api: _Api, path: str) -> None:
        self.api = api
        self.path = path
        self.stream: Any = None

    def _open(self) -> None:
        resp = self.api.handle(ApiRequest("GET", self.path, {"watch": "true"}, user=SCHEDULER_USER))
        if resp.watch is None:
            message = (resp.body or {}).get("message", "")
            raise WatchRefused(f"cannot watch {self.path}: {resp.status} {message}")
        self.stream = resp.watch

    def poll(self) -> tuple[bool, list[Mapping[str, Any]]]:
        """(reset, events).  With ``reset`` the watch was (re)opened and the
        events begin with every current object: the caller replaces its cache."""
        reset = False
        for _ in range(MAX_WATCH_REOPENS):
            if self.stream is None or self.stream.done:
                self.close()
                self._open()
                reset = True
            events = self.stream.poll()
            if any(e.get("type") == "ERROR" for e in events):
                # 410 Expired: the store compacted past us.  Start over.
                log.info("watch %s expired; listing again", self.path)
                self.close()
                continue
            return reset, [e for e in events if e.get("type") in ("ADDED", "MODIFIED", "DELETED")]
        raise WatchRefused(f"watch {self.path} keeps expiring")

    def close(self) -> None:
        if self.stream is not None:
            self.stream.close()
            self.stream = None


def _meta(obj: Obj) -> Mapping[str, Any]:
    m = obj.get("metadata")
    return m if isinstance(m, Mapping) else {}


def _key(obj: Obj) -> str:
    meta = _meta(obj)
    ns = meta.get("namespace") or ""
    return f"{ns}/{meta.get('name', '')}" if ns else str(meta.get("name", ""))


def _section(obj: Obj, name: str) -> Mapping[str, Any]:
    s = obj.get(name)
    return s if isinstance(s, Mapping) else {}


# --------------------------------------------------------------------------- the cache


class _PodEntry:
    """A pod as last seen, parsed once per resourceVersion."""

    __slots__ = (
        "ctx_gen",
        "deleting",
        "enriched",
        "error",
        "key",
        "model",
        "node_name",
        "obj",
        "scheduler_name",
        "seq",
        "terminal",
    )

    def __init__(self, obj: Obj, seq: int) -> None:
        self.obj = obj
        self.seq = seq
        self.key = _key(obj)
        spec, status = _section(obj, "spec"), _section(obj, "status")
        self.node_name = str(spec.get("nodeName") or "")
        self.scheduler_name = str(spec.get("schedulerName") or "default-scheduler")
        self.terminal = status.get("phase") in TERMINAL_PHASES
        self.deleting = bool(_meta(obj).get("deletionTimestamp"))
        self.model: Pod | None = None
        self.error = ""
        try:
            self.model = parse_pod(obj)
        except InputError as e:
            self.error = str(e)
        self.enriched: Pod | None = None
        self.ctx_gen = -1

    def running(self) -> Pod | None:
        """The model of a pod that occupies its node (bound, not terminal)."""
        if self.model is None or not self.node_name or self.terminal:
            return None
        return self.model

    def fingerprint(self) -> object:
        """What a retry depends on of the pod itself."""
        return self.model if self.model is not None else ("error", self.error)


@frozen
class Plan:
    """One pass's decisions (the core's), as the shell will carry them out."""

    victims: tuple[tuple[str, str, str], ...] = ()
    """(victim pod key, its node, the preemptor's key or "" when unknown)."""
    binds: tuple[tuple[str, str], ...] = ()
    """(pod key, node) in the order the core bound them."""
    failures: tuple[tuple[str, str, str, str], ...] = ()
    """(pod key, reason, message, nominated node or ""): pods the core tried and left pending."""


class SchedulerShell:
    """The shell's state and its three steps: `sync`, `plan`, `apply`; `run` loops them."""

    def __init__(
        self,
        api: _Api,
        config: SchedulerConfig | None = None,
        *,
        notify: Callable[[], None] = lambda: None,
        rng: random.Random | None = None,
    ) -> None:
        self.api = api
        self.config = config if config is not None else SchedulerConfig.default()
        self.profiles = frozenset(p.scheduler_name for p in self.config.profiles)
        self.notify = notify
        self.rng = rng if rng is not None else random.Random(0)
        self.watches = {name: _Watch(api, path) for name, path in WATCHED}
        self.pods: dict[str, _PodEntry] = {}
        self.pending_pods: dict[str, _PodEntry] = {}
        """The pods this scheduler should place (`pending`), by key."""
        self.nodes: dict[str, Node] = {}
        self.node_errors: dict[str, str] = {}
        self.namespace_labels: dict[str, FrozenMap[str]] = {}
        self.services: dict[str, tuple[str, Mapping[str, str]]] = {}
        self.replicasets: dict[str, LabelSelector | None] = {}
        self.core: Scheduler | None = None
        """The pure scheduler, kept from pass to pass while the cluster is as it saw it."""
        self._core_gen = -1
        self._core_ctx = -1
        self._core_pending: dict[str, object] = {}
        """The pending pods given to the core (key -> fingerprint), until it binds them."""
        self._core_parked: dict[str, object] = {}
        self._core_preempted = 0
        self.reported: dict[str, tuple[str, object, str]] = {}
        """Pod key -> (uid, fingerprint, message) of the failure last written."""
        self.expected_bound: dict[str, str] = {}
        self.expected_gone: set[str] = set()
        self.cluster_gen = 0
        """Bumped by every change that may make an unschedulable pod fit."""
        self.ctx_gen = 0
        """Bumped by namespace, service and replicaset changes (pod context)."""
        self._seq = 0
        self.recorder = EventRecorder("default-scheduler")
        self.passes = 0
        self.errors = 0

    # -- 1. sync: the watches into the cache --------------------------------

    def sync(self) -> None:
        """Drains every watch into the cache (raises WatchRefused)."""
        for name, watch in self.watches.items():
            reset, events = watch.poll()
            apply = getattr(self, f"_on_{name}")
            if reset:
                seen = {_key(e["object"]) for e in events}
                for key in list(self._keys(name)):
                    if key not in seen:
                        apply("DELETED", key, None)
            for e in events:
                obj = e["object"]
                apply(e["type"], _key(obj), obj if e["type"] != "DELETED" else None)

    def _keys(self, name: str) -> Iterable[str]:
        if name == "pods":
            return self.pods.keys()
        if name == "nodes":
            return set(self.nodes) | set(self.node_errors)
        if name == "namespaces":
            return self.namespace_labels.keys()
        if name == "services":
            return self.services.keys()
        return self.replicasets.keys()

    def _on_pods(self, typ: str, key: str, obj: Obj | None) -> None:
        old = self.pods.get(key)
        new: _PodEntry | None = None
        if obj is not None:
            seq = old.seq if old is not None else self._next_seq()
            new = _PodEntry(obj, seq)
            self.pods[key] = new
            if self.pending(new):
                self.pending_pods[key] = new
            else:
                self.pending_pods.pop(key, None)
        else:
            self.pods.pop(key, None)
            self.pending_pods.pop(key, None)
            self.reported.pop(key, None)
        before = old.running() if old is not None else None
        after = new.running() if new is not None else None
        if before == after:
            return
        expected = self.expected_bound.get(key)
        if after is not None and before is None and expected is not None:
            self.expected_bound.pop(key)
            if after.node_name == expected:
                return  # our own binding: the core placed it there already
        if after is None and key in self.expected_gone:
            self.expected_gone.discard(key)
            return  # our own preemption: the core removed it already
        self.cluster_gen += 1

    def _on_nodes(self, typ: str, key: str, obj: Obj | None) -> None:
        before = self.nodes.get(key)
        self.node_errors.pop(key, None)
        after: Node | None = None
        if obj is not None:
            try:
                after = parse_node(obj)
            except InputError as e:
                self.node_errors[key] = str(e)
                log.warning("node %s is left out of scheduling: %s", key, e)
        if after is None:
            self.nodes.pop(key, None)
        else:
            self.nodes[key] = after
        if before != after:
            self.cluster_gen += 1

    # Namespaces, services and replicasets matter only through the labels and
    # selectors that pods are given (`_enriched`): other changes are ignored.

    def _on_namespaces(self, typ: str, key: str, obj: Obj | None) -> None:
        labels = None
        if obj is not None:
            raw = _meta(obj).get("labels") or {}
            labels = FrozenMap({str(k): str(v) for k, v in raw.items()})
        self._set_context(self.namespace_labels, key, labels)

    def _on_services(self, typ: str, key: str, obj: Obj | None) -> None:
        value = None
        selector = _section(obj, "spec").get("selector") if obj is not None else None
        if isinstance(selector, Mapping):
            ns = str(_meta(obj or {}).get("namespace") or "")
            value = (ns, {str(k): str(v) for k, v in selector.items()})
        self._set_context(self.services, key, value)

    def _on_replicasets(self, typ: str, key: str, obj: Obj | None) -> None:
        if obj is None:
            self._set_context(self.replicasets, key, None, remove=True)
            return
        try:
            sel = parse_label_selector(_section(obj, "spec").get("selector"), key)
        except InputError:
            sel = None
        self._set_context(self.replicasets, key, sel, remove=False)

    def _set_context(
        self, table: dict[str, Any], key: str, value: Any, *, remove: bool | None = None
    ) -> None:
        """Sets (or, with value None, removes) a context entry; bumps ``ctx_gen``
        when that changes anything."""
        if remove is None:
            remove = value is None
        if remove:
            if key in table:
                del table[key]
                self.ctx_gen += 1
        elif key not in table or table[key] != value:
            table[key] = value
            self.ctx_gen += 1

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    # -- 2. plan: the pure core decides -------------------------------------

    def pending(self, entry: _PodEntry) -> bool:
        """Is this pod one this scheduler should place?"""
        if entry.node_name or entry.terminal or entry.deleting:
            return False
        return entry.scheduler_name in self.profiles

    def _reusable(self) -> bool:
        """May the core carry on?  Only while nothing it knows has changed
        behind its back: no cluster or context change, every pending pod it
        holds still pending and as it was."""
        if self.core is None or self._core_gen != self.cluster_gen:
            return False
        if self._core_ctx != self.ctx_gen:
            return False
        for key, fingerprint in self._core_pending.items():
            entry = self.pending_pods.get(key)
            if entry is None or entry.fingerprint() != fingerprint:
                return False
        return True

    def plan(self) -> Plan | None:
        """Runs the core; None when there is nothing new for it to try."""
        pending = list(self.pending_pods.values())
        rebuilt = not self._reusable()
        if rebuilt:
            self.core = None
            if not pending:
                return None
            running = [
                self._enriched(e)
                for e in self.pods.values()
                if (m := e.running()) is not None and m.node_name in self.nodes
            ]
            node_list = [self.nodes[n] for n in sorted(self.nodes)]
            self.core = Scheduler(node_list, running, self.config, rng=self.rng)
            self._core_gen, self._core_ctx = self.cluster_gen, self.ctx_gen
            self._core_pending, self._core_parked, self._core_preempted = {}, {}, 0
            fresh = pending
        else:
            fresh = [e for e in pending if e.key not in self._core_pending]
            if not fresh:
                return None
        core = self.core
        assert core is not None
        self.passes += 1
        failures: list[tuple[str, str, str, str]] = []
        for e in sorted(fresh, key=_queue_order):
            self._core_pending[e.key] = e.fingerprint()
            if e.model is None:
                failures.append((e.key, "SchedulerError", e.error, ""))
                continue
            try:
                core.add_pod(self._enriched(e))
            except ValueError:
                # The core knows this key already (it should not): start afresh.
                if rebuilt:
                    raise
                self.core = None
                return self.plan()
        result = core.run()
        binds = []
        for key, node in result.bound:
            if self._core_pending.pop(key, None) is not None:
                binds.append((key, node))
        victims = []
        for p in result.preemptions[self._core_preempted :]:
            if p.victim in self._core_pending:
                # A pod assumed and preempted within the run was never bound
                # for real: it is still pending, and the core thinks it gone.
                self._core_gen = -1
                continue
            entry = self.pods.get(p.victim)
            node = entry.node_name if entry is not None else p.node
            victims.append((p.victim, node, p.preemptor))
        self._core_preempted = len(result.preemptions)
        for key, parked in core.parked.items():
            if self._core_parked.get(key) is not parked:
                # A (new) failed attempt.
                self._core_parked[key] = parked
                nominated = core.nominated_node.get(key, "")
                message = result.reasons.get(key, "")
                failures.append((key, "Unschedulable", message, nominated))
        return Plan(tuple(victims), tuple(binds), tuple(failures))

    def _enriched(self, entry: _PodEntry) -> Pod:
        """The pod with the context kube-scheduler reads from other objects."""
        if entry.enriched is not None and entry.ctx_gen == self.ctx_gen:
            return entry.enriched
        model = entry.model
        assert model is not None
        pod = attrs.evolve(
            model,
            namespace_labels=self.namespace_labels.get(model.namespace, FrozenMap()),
            default_spread_selector=self._default_selector(entry.obj, model),
        )
        entry.enriched, entry.ctx_gen = pod, self.ctx_gen
        return pod

    def _default_selector(self, obj: Obj, pod: Pod) -> LabelSelector | None:
        """kube-scheduler's ``helper.DefaultSelector`` (v1.32): the selectors of
        the Services in the pod's namespace that select it, ANDed with the
        selector of its controlling ReplicaSet; None when that is empty."""
        labels: dict[str, str] = {}
        exprs: list[LabelSelectorRequirement] = []
        for ns, sel in self.services.values():
            if ns == pod.namespace and all(pod.labels.get(k) == v for k, v in sel.items()):
                labels.update(sel)
        for ref in _meta(obj).get("ownerReferences") or ():
            if not isinstance(ref, Mapping) or not ref.get("controller"):
                continue
            if ref.get("kind") == "ReplicaSet" and str(ref.get("apiVersion", "")).startswith(
                "apps/"
            ):
                rs = self.replicasets.get(f"{pod.namespace}/{ref.get('name', '')}")
                if rs is not None:
                    labels.update(rs.match_labels)
                    exprs.extend(rs.match_expressions)
            break
        if not labels and not exprs:
            return None
        return LabelSelector(FrozenMap(labels), tuple(exprs))

    # -- 3. apply: the effects, through the API core ------------------------

    async def apply(self, plan: Plan) -> bool:
        """Carries out a plan; True when the model proved stale and another
        pass should run at once."""
        for key, node, preemptor in plan.victims:
            if not self._preempt(key, node, preemptor):
                self.core = None
                return True
            await asyncio.sleep(0)
        for key, node in plan.binds:
            if self._bind(key, node) == "stale":
                # Every later decision assumed what did not happen: start over.
                self.core = None
                return True
            await asyncio.sleep(0)
        for key, reason, message, nominated in plan.failures:
            self._fail(key, reason, message, nominated)
            await asyncio.sleep(0)
        return False

    def _request(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        content_type: str | None = None,
    ) -> ApiResponse:
        resp = core_request(self.api, method, path, body, content_type, SCHEDULER_USER)
        if resp.status < 400:
            self.notify()
        return resp

    def _bind(self, key: str, node: str) -> str:
        """The outcome: "ok", "stale" (409/404: the model was out of date) or "error"."""
        entry = self.pods.get(key)
        if entry is None:
            return "stale"
        meta = _meta(entry.obj)
        ns, name = meta.get("namespace", "default"), meta.get("name", "")
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": name, "namespace": ns, "uid": meta.get("uid", "")},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        }
        resp = self._request("POST", f"/api/v1/namespaces/{ns}/pods/{name}/binding", binding)
        if resp.status in (200, 201):
            self.reported.pop(key, None)
            self.expected_bound[key] = node
            self._event(
                entry.obj, "Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node}"
            )
            return "ok"
        message = _message(resp)
        if resp.status in (404, 409):
            log.info("binding %s to %s refused: %s", key, node, message)
            return "stale"
        log.warning("binding %s to %s failed: %s", key, node, message)
        self.core = None  # it assumed the pod on the node; retry on the next change
        self._fail(key, "SchedulerError", f"Binding rejected: {message}", "")
        return "error"

    def _fail(self, key: str, reason: str, message: str, nominated: str) -> None:
        """The pod's PodScheduled condition and a FailedScheduling event, once
        per outcome: not again while the pod and the message stay the same."""
        entry = self.pods.get(key)
        if entry is None:
            return
        obj = entry.obj
        outcome = (str(_meta(obj).get("uid", "")), entry.fingerprint(), message)
        if self.reported.get(key) == outcome:
            return
        self.reported[key] = outcome
        meta = _meta(obj)
        status = _section(obj, "status")
        current = next(
            (
                c
                for c in status.get("conditions") or ()
                if isinstance(c, Mapping) and c.get("type") == "PodScheduled"
            ),
            None,
        )
        cond: dict[str, Any] = {
            "type": "PodScheduled",
            "status": "False",
            "reason": reason,
            "message": message,
        }
        changed = current is None or any(current.get(f) != cond[f] for f in cond)
        nominated_changed = (status.get("nominatedNodeName") or "") != nominated
        if changed or nominated_changed:
            # podutil.UpdatePodCondition: the transition time moves only
            # when the condition's status does.
            same = current is not None and current.get("status") == "False"
            cond["lastTransitionTime"] = (
                current.get("lastTransitionTime") if same and current else None
            ) or self.api.now()
            patch: dict[str, Any] = {}
            if changed:
                patch["conditions"] = [cond]
            if nominated_changed:
                patch["nominatedNodeName"] = nominated or None
            ns, name = meta.get("namespace", "default"), meta.get("name", "")
            resp = self._request(
                "PATCH",
                f"/api/v1/namespaces/{ns}/pods/{name}/status",
                {"status": patch},
                "application/strategic-merge-patch+json",
            )
            if resp.status >= 400 and resp.status != 404:
                log.warning("cannot update the status of %s: %s", key, _message(resp))
        self._event(obj, "Warning", "FailedScheduling", message)

    def _preempt(self, key: str, node: str, preemptor_key: str) -> bool:
        """DefaultPreemption's victim handling; False if the victim could not go."""
        entry = self.pods.get(key)
        if entry is None:
            return True
        meta = _meta(entry.obj)
        ns, name, uid = meta.get("namespace", "default"), meta.get("name", ""), meta.get("uid", "")
        preemptor = self.pods.get(preemptor_key)
        pmeta = _meta(preemptor.obj) if preemptor is not None else {}
        scheduler_name = (
            _section(preemptor.obj, "spec").get("schedulerName") if preemptor is not None else None
        ) or "default-scheduler"
        cond = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "PreemptionByScheduler",
            "message": f"{scheduler_name}: preempting to accommodate a higher priority pod",
            "lastTransitionTime": self.api.now(),
        }
        self._request(
            "PATCH",
            f"/api/v1/namespaces/{ns}/pods/{name}/status",
            {"status": {"conditions": [cond]}},
            "application/strategic-merge-patch+json",
        )
        self.expected_gone.add(key)
        resp = self._request(
            "DELETE",
            f"/api/v1/namespaces/{ns}/pods/{name}",
            {
                "apiVersion": "v1",
                "kind": "DeleteOptions",
                "gracePeriodSeconds": 0,
                "preconditions": {"uid": uid},
            },
        )
        if resp.status >= 400 and resp.status != 404:
            self.expected_gone.discard(key)
            log.warning("cannot preempt %s: %s", key, _message(resp))
            return False
        who = f"pod {pmeta.get('uid', '')}" if pmeta.get("uid") else "a pod"
        self._event(entry.obj, "Normal", "Preempted", f"Preempted by {who} on node {node}")
        return True

    def _event(self, obj: Obj, typ: str, reason: str, message: str) -> None:
        """A core/v1 Event as kube's event recorder writes one."""
        event = self.recorder.body(obj, typ, reason, message, self.api.now())
        ns, name = event["metadata"]["namespace"], event["involvedObject"]["name"]
        resp = self._request("POST", f"/api/v1/namespaces/{ns}/events", event)
        if resp.status >= 400:
            log.info("cannot record event %s for %s/%s: %s", reason, ns, name, _message(resp))

    # -- the loop -----------------------------------------------------------

    async def step(self) -> bool:
        """One pass; True when another should follow at once."""
        self.sync()
        plan = self.plan()
        if plan is None:
            return False
        return await self.apply(plan)

    async def run(self, changed: Callable[[], asyncio.Event]) -> None:
        """Passes until cancelled; between them, waits for ``changed()`` to be set.
        ``changed`` returns the event that the next change will set."""
        try:
            while True:
                wake = changed()
                again = False
                try:
                    again = await self.step()
                except WatchRefused as e:
                    self.errors += 1
                    log.error("scheduler: %s", e)
                except Exception:
                    # A bug; keep the control plane up, forget the core (its
                    # state may be half-updated) and try again on the next change.
                    self.errors += 1
                    self.core = None
                    log.exception("scheduler pass failed")
                if not again:
                    await wake.wait()
        finally:
            self.close()

    def close(self) -> None:
        for w in self.watches.values():
            w.close()


def _queue_order(entry: _PodEntry) -> tuple[str, int]:
    return (str(_meta(entry.obj).get("creationTimestamp") or ""), entry.seq)


def _message(resp: ApiResponse) -> str:
    body = resp.body or {}
    return str(body.get("message") or f"HTTP {resp.status}")


def scheduler_extension(config: SchedulerConfig | None = None) -> Extension:
    """The `kubeproof.serve.app.Extension` that runs the scheduler in a server."""

    async def run_scheduler(server: RunningServer) -> None:
        shell = SchedulerShell(server.api, config, notify=server.notify_changed)
        signal = server.http.signal
        await shell.run(lambda: signal.current)

    return run_scheduler
