"""The authorizer's view of the RBAC objects: a watch-fed cache over the store.

Theory of operation
-------------------
kube-apiserver's RBAC authorizer reads roles and bindings from informer
caches.  `RbacCache` does the same over our store: at construction it lists
the four RBAC prefixes at one revision and opens a watch on each from the
next revision; `state()` first drains the watches (so it is current as of
the store's revision: with the in-process store a poll delivers everything
written so far) and returns an immutable `RbacState` snapshot, rebuilt only
when something changed.  A cache is per server instance: a restarted
server builds a fresh one, as a restarted kube-apiserver relists.  If a
watch is cancelled (compaction overtook it) the cache relists.
"""

from __future__ import annotations

from typing import Any

from kubeproof.mvcc import EventType

from .rbac import Binding, RbacState, Rule, rules_of
from .resources import by_plural
from .storage import ObjectStore, StoreWatcher, collection_prefix, decode, prefix_end

_PLURALS = ("clusterroles", "roles", "clusterrolebindings", "rolebindings")


class RbacCache:
    def __init__(self, objects: ObjectStore) -> None:
        self.objects = objects
        self._watchers: list[StoreWatcher] = []
        self._objects: dict[bytes, tuple[str, dict[str, Any]]] = {}
        self._state: RbacState | None = None
        self._relist()

    def _relist(self) -> None:
        for w in self._watchers:
            w.cancel()
        self._watchers = []
        self._objects = {}
        rev = self.objects.revision
        for plural in _PLURALS:
            info = by_plural(plural)
            assert info is not None
            p = collection_prefix(info, "")
            resp = self.objects.range(p, prefix_end(p), revision=rev)
            for kv in resp.kvs:
                self._objects[kv.key] = (plural, decode(kv))
            self._watchers.append(
                self.objects.store.watch(p, prefix_end(p), start_revision=rev + 1)
            )
        self._state = None

    def _drain(self) -> None:
        changed = False
        for plural, w in zip(_PLURALS, self._watchers, strict=True):
            for resp in w.poll():
                if resp.canceled:
                    self._relist()
                    return
                for ev in resp.events:
                    changed = True
                    if ev.type is EventType.DELETE:
                        self._objects.pop(ev.kv.key, None)
                    else:
                        self._objects[ev.kv.key] = (plural, decode(ev.kv))
        if changed:
            self._state = None

    def state(self) -> RbacState:
        self._drain()
        if self._state is None:
            self._state = build_state(self._objects.values())
        return self._state

    def close(self) -> None:
        for w in self._watchers:
            w.cancel()
        self._watchers = []


def build_state(objects: Any) -> RbacState:
    cluster_roles: dict[str, tuple[Rule, ...]] = {}
    roles: dict[tuple[str, str], tuple[Rule, ...]] = {}
    crbs: list[Binding] = []
    rbs: dict[str, list[Binding]] = {}
    for plural, obj in objects:
        meta = obj.get("metadata") or {}
        name = str(meta.get("name", ""))
        ns = str(meta.get("namespace", ""))
        if plural == "clusterroles":
            cluster_roles[name] = rules_of(obj)
        elif plural == "roles":
            roles[(ns, name)] = rules_of(obj)
        elif plural == "clusterrolebindings":
            b = Binding.from_json(obj)
            crbs.append(Binding(b.name, "", b.role_ref, b.subjects))
        else:
            rbs.setdefault(ns, []).append(Binding.from_json(obj))
    crbs.sort(key=lambda b: b.name)
    return RbacState(
        cluster_roles,
        roles,
        tuple(crbs),
        {ns: tuple(sorted(v, key=lambda b: b.name)) for ns, v in rbs.items()},
    )
