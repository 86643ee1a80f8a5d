"""The API server's invariants, as checkers over a simulated run.

Theory of operation
-------------------
The API simulation (`kubeproof.sim.apisim`) hands every checker each
request a server executed (with the store revision before and after), each
watch it opened and each batch of watch events it delivered.  The checkers
judge them against the store itself (the oracle: a linearizable sequence
of revisions) and against the independent RBAC model (`rbac_model`):

API-RV-MONOTONIC
    resourceVersions never go back: a successful write returns a revision
    it created (in (before, after] and above every revision any earlier
    write returned), or, for a write that changed nothing, one not above
    the current one; a fresh list reports the current revision; a watch's
    events after its start carry non-decreasing versions above the start,
    and its progress (bookmarks) never goes back.
API-NO-LOST-UPDATE
    an update (or delete) that names a resourceVersion succeeds iff that is
    the object's current version: of concurrent writers that read one
    version, exactly one wins and every other gets 409 Conflict.
API-WATCH-COMPLETE
    a watch from version N delivers, in order, exactly the changes to its
    collection after N, as ADDED / MODIFIED / DELETED with the versions the
    store gave them, up to the version it reports having delivered; a
    watch without a version first delivers the state at its start; a 410
    Expired ERROR is allowed only once the store has compacted past N.
API-AUTHORIZED
    no request succeeds that the RBAC model denies and none is denied that
    it allows (and a SelfSubjectAccessReview answers what the model says);
    writes of roles and bindings that would escalate privileges do not
    succeed, and those that would not are not refused as escalations.

The store's change log is recorded as the run goes (before any compaction
can drop it), so a checker can always say what a watch should have seen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from kubeproof.api import ApiRequest
from kubeproof.mvcc import KeyValue, MVCCStore
from kubeproof.sim.apisim import Execution, WatchOpen, WatchPoll
from kubeproof.sim.observe import Violation

from . import rbac_model as model
from .ids import API_AUTHORIZED, API_NO_LOST_UPDATE, API_RV_MONOTONIC, API_WATCH_COMPLETE

# kube-apiserver's etcd layout, as the spec knows it (not imported from the impl).
PREFIXES = {
    "pods": "/registry/pods",
    "configmaps": "/registry/configmaps",
    "services": "/registry/services/specs",
    "events": "/registry/events",
    "replicasets": "/registry/replicasets",
    "namespaces": "/registry/namespaces",
    "nodes": "/registry/minions",
    "roles": "/registry/roles",
    "rolebindings": "/registry/rolebindings",
    "clusterroles": "/registry/clusterroles",
    "clusterrolebindings": "/registry/clusterrolebindings",
}
RBAC = "rbac.authorization.k8s.io"


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def object_key(path: str) -> bytes | None:
    """The etcd key of the object a path names (None for collections and others)."""
    segs = _segments(path)
    if not segs or segs[0] not in ("api", "apis"):
        return None
    rest = segs[2:] if segs[0] == "api" else segs[3:]
    if len(rest) >= 4 and rest[0] == "namespaces" and rest[2] in PREFIXES:
        return f"{PREFIXES[rest[2]]}/{rest[1]}/{rest[3]}".encode()
    if (
        len(rest) >= 2
        and rest[0] in PREFIXES
        and rest[0]
        not in (
            "pods",
            "configmaps",
            "services",
            "events",
            "replicasets",
            "roles",
            "rolebindings",
        )
    ):
        return f"{PREFIXES[rest[0]]}/{rest[1]}".encode()
    return None


def collection_prefix(path: str) -> bytes | None:
    segs = _segments(path)
    if not segs or segs[0] not in ("api", "apis"):
        return None
    rest = segs[2:] if segs[0] == "api" else segs[3:]
    if len(rest) == 3 and rest[0] == "namespaces" and rest[2] in PREFIXES:
        return f"{PREFIXES[rest[2]]}/{rest[1]}/".encode()
    if len(rest) == 1 and rest[0] in PREFIXES:
        return f"{PREFIXES[rest[0]]}/".encode()
    return None


def snapshot(store: MVCCStore) -> model.RbacSnapshot:
    """The RBAC objects in the store right now, read raw."""

    def read(prefix: str) -> list[dict[str, Any]]:
        p = prefix.encode() + b"/"
        end = p[:-1] + b"0"
        return [json.loads(kv.value) for kv in store.range(p, end).kvs]

    crs = {str(o["metadata"]["name"]): o for o in read(PREFIXES["clusterroles"])}
    roles = {
        (str(o["metadata"].get("namespace", "")), str(o["metadata"]["name"])): o
        for o in read(PREFIXES["roles"])
    }
    return model.RbacSnapshot(
        crs, roles, read(PREFIXES["clusterrolebindings"]), read(PREFIXES["rolebindings"])
    )


class ChangeLog:
    """Every change the store made, by revision, recorded before compaction."""

    def __init__(self) -> None:
        self.changes: dict[int, tuple[KeyValue, ...]] = {}
        self.through = 1

    def sync(self, store: MVCCStore) -> None:
        for rev in range(self.through + 1, store.revision + 1):
            self.changes[rev] = store.changes(rev)
        self.through = max(self.through, store.revision)


class _Base:
    ID = ""

    def __init__(self, log: ChangeLog) -> None:
        self.log = log

    def on_start(self, store: MVCCStore) -> list[Violation]:
        self.log.sync(store)
        return []

    def before_execution(self, step: int, request: ApiRequest, store: MVCCStore) -> None:
        self.log.sync(store)

    def on_execution(self, ex: Execution, store: MVCCStore) -> list[Violation]:
        return []

    def on_watch_open(self, w: WatchOpen, store: MVCCStore) -> list[Violation]:
        return []

    def on_watch_poll(self, p: WatchPoll, store: MVCCStore) -> list[Violation]:
        return []

    def on_store(self, store: MVCCStore) -> list[Violation]:
        self.log.sync(store)
        return []

    def violation(self, step: int, message: str, **evidence: Any) -> list[Violation]:
        return [Violation(self.ID, step, message, evidence)]


def _meta_rv(body: Mapping[str, Any] | None) -> int | None:
    if not isinstance(body, Mapping):
        return None
    rv = (body.get("metadata") or {}).get("resourceVersion")
    try:
        return int(rv) if rv not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _is_object(body: Mapping[str, Any] | None) -> bool:
    if not isinstance(body, Mapping):
        return False
    kind = str(body.get("kind", ""))
    return bool(kind) and kind != "Status" and not kind.endswith("List") and kind != "Table"


def _event_rv(e: Mapping[str, Any]) -> int | None:
    return _meta_rv(e.get("object"))


class RvMonotonic(_Base):
    """API-RV-MONOTONIC; see the module docstring."""

    ID = API_RV_MONOTONIC

    def __init__(self, log: ChangeLog) -> None:
        super().__init__(log)
        self.max_write = 0
        self.watch_start: dict[int, int] = {}
        self.watch_last: dict[int, int] = {}
        self.watch_progress: dict[int, int] = {}
        self.watch_initial: dict[int, bool] = {}

    def on_execution(self, ex: Execution, store: MVCCStore) -> list[Violation]:
        req = ex.request
        ok = 200 <= ex.status < 300
        if not ok:
            return []
        rv = _meta_rv(ex.body)
        if (
            req.method in ("POST", "PUT", "PATCH", "DELETE")
            and _is_object(ex.body)
            and rv is not None
        ):
            if ex.revision_after > ex.revision_before:
                if not ex.revision_before < rv <= ex.revision_after or rv <= self.max_write:
                    return self.violation(
                        ex.step,
                        f"{req.method} {req.path} returned resourceVersion {rv}, not a revision "
                        f"it created (store went {ex.revision_before} -> {ex.revision_after}; "
                        f"highest earlier write {self.max_write})",
                        path=req.path,
                        rv=rv,
                        before=ex.revision_before,
                        after=ex.revision_after,
                        max_write=self.max_write,
                    )
                self.max_write = max(self.max_write, rv)
            elif rv > ex.revision_before:
                return self.violation(
                    ex.step,
                    f"{req.method} {req.path} wrote nothing but returned resourceVersion {rv} "
                    f"above the store's revision {ex.revision_before}",
                    path=req.path,
                    rv=rv,
                )
            return []
        if req.method == "GET" and rv is not None and ex.watch_id is None:
            kind = str((ex.body or {}).get("kind", ""))
            is_list = kind.endswith("List") or kind == "Table"
            if rv > ex.revision_before:
                return self.violation(
                    ex.step,
                    f"GET {req.path} returned resourceVersion {rv} above the store's revision "
                    f"{ex.revision_before}",
                    path=req.path,
                    rv=rv,
                )
            fresh = not req.param("resourceVersion") and not req.param("continue")
            if is_list and fresh and rv < self.max_write:
                return self.violation(
                    ex.step,
                    f"a fresh list of {req.path} reported resourceVersion {rv}, older than the "
                    f"write at {self.max_write} that had completed",
                    path=req.path,
                    rv=rv,
                    max_write=self.max_write,
                )
        return []

    def on_watch_open(self, w: WatchOpen, store: MVCCStore) -> list[Violation]:
        rv = w.resource_version
        start = int(rv) if rv not in (None, "", "0") else w.list_revision
        self.watch_start[w.watch_id] = start
        self.watch_last[w.watch_id] = start
        self.watch_progress[w.watch_id] = 0
        self.watch_initial[w.watch_id] = rv in (None, "", "0")
        return []

    def on_watch_poll(self, p: WatchPoll, store: MVCCStore) -> list[Violation]:
        wid = p.watch_id
        if wid not in self.watch_start:
            return []
        start = self.watch_start[wid]
        for e in p.events:
            typ = e.get("type")
            rv = _event_rv(e)
            if typ == "ERROR" or rv is None:
                continue
            if typ == "BOOKMARK":
                if rv < self.watch_last[wid]:
                    return self.violation(
                        p.step,
                        f"watch {wid}: bookmark at {rv} after an event at {self.watch_last[wid]}",
                        watch=wid,
                    )
                continue
            if self.watch_initial[wid] and typ == "ADDED" and rv <= start:
                continue  # a synthetic event of the initial state
            self.watch_initial[wid] = False
            if rv <= start or rv < self.watch_last[wid]:
                return self.violation(
                    p.step,
                    f"watch {wid}: event {typ} at resourceVersion {rv} after "
                    f"{self.watch_last[wid]} (watch started at {start})",
                    watch=wid,
                    rv=rv,
                    last=self.watch_last[wid],
                    start=start,
                )
            self.watch_last[wid] = rv
        if p.progress < self.watch_progress[wid]:
            return self.violation(
                p.step,
                f"watch {wid}: progress went back from {self.watch_progress[wid]} to {p.progress}",
                watch=wid,
            )
        self.watch_progress[wid] = p.progress
        return []


class NoLostUpdate(_Base):
    """API-NO-LOST-UPDATE; see the module docstring."""

    ID = API_NO_LOST_UPDATE

    def __init__(self, log: ChangeLog) -> None:
        super().__init__(log)
        self.pending: tuple[int, int, str, int] | None = None

    def before_execution(self, step: int, request: ApiRequest, store: MVCCStore) -> None:
        super().before_execution(step, request, store)
        self.pending = None
        if request.method not in ("PUT", "DELETE"):
            return
        key = object_key(request.path)
        if key is None:
            return
        try:
            body = json.loads(request.body) if request.body else {}
        except ValueError:
            return
        if not isinstance(body, dict):
            return
        if request.method == "PUT":
            given = (body.get("metadata") or {}).get("resourceVersion")
        else:
            given = (body.get("preconditions") or {}).get("resourceVersion")
        if not isinstance(given, str) or not given:
            return
        kvs = store.range(key).kvs
        current = kvs[0].mod_revision if kvs else 0
        self.pending = (step, id(request), given, current)

    def on_execution(self, ex: Execution, store: MVCCStore) -> list[Violation]:
        p = self.pending
        self.pending = None
        if p is None or p[1] != id(ex.request):
            return []
        _, _, given, current = p
        body = ex.body or {}
        conflict = ex.status == 409 and body.get("reason") == "Conflict"
        matches = given == str(current)
        req = ex.request
        if ex.status == 201 and current == 0:
            return []  # created by the PUT (create-on-update kinds): no version to lose
        if 200 <= ex.status < 300 and not matches:
            return self.violation(
                ex.step,
                f"{req.method} {req.path} from resourceVersion {given} succeeded although the "
                f"object was at {current}: a concurrent update was lost",
                path=req.path,
                given=given,
                current=current,
                status=ex.status,
            )
        if conflict and matches and current:
            return self.violation(
                ex.step,
                f"{req.method} {req.path} from the current resourceVersion {given} was refused "
                "with 409 Conflict: no writer won",
                path=req.path,
                given=given,
                current=current,
            )
        return []


class WatchComplete(_Base):
    """API-WATCH-COMPLETE; see the module docstring."""

    ID = API_WATCH_COMPLETE

    def __init__(self, log: ChangeLog) -> None:
        super().__init__(log)
        self.watches: dict[int, dict[str, Any]] = {}

    def on_watch_open(self, w: WatchOpen, store: MVCCStore) -> list[Violation]:
        prefix = collection_prefix(w.path)
        if prefix is None:
            return []
        rv = w.resource_version
        initial: list[tuple[str, str, int]] = []
        if rv in (None, "", "0"):
            start = w.list_revision
            end = prefix[:-1] + bytes([prefix[-1] + 1])
            for kv in store.range(prefix, end, revision=start).kvs:
                initial.append(("ADDED", kv.key[len(prefix) :].decode(), kv.mod_revision))
        else:
            start = int(rv)
        self.watches[w.watch_id] = {
            "prefix": prefix,
            "start": start,
            "initial": initial,
            "delivered": [],
            "initial_left": len(initial),
            "initial_seen": [],
            "done": False,
        }
        return []

    def _expected(self, prefix: bytes, start: int, through: int) -> list[tuple[str, str, int]]:
        out = []
        for rev in range(start + 1, through + 1):
            for kv in self.log.changes.get(rev, ()):
                if not kv.key.startswith(prefix):
                    continue
                if kv.version == 0:
                    typ = "DELETED"
                elif kv.create_revision == kv.mod_revision:
                    typ = "ADDED"
                else:
                    typ = "MODIFIED"
                out.append((typ, kv.key[len(prefix) :].decode(), kv.mod_revision))
        return out

    def on_watch_poll(self, p: WatchPoll, store: MVCCStore) -> list[Violation]:
        self.log.sync(store)
        w = self.watches.get(p.watch_id)
        if w is None or w["done"]:
            return []
        prefix: bytes = w["prefix"]
        for e in p.events:
            typ = str(e.get("type"))
            if typ == "BOOKMARK":
                continue
            if typ == "ERROR":
                obj = e.get("object") or {}
                if obj.get("code") != 410 or not p.compact_revision > w["start"] + 1:
                    return self.violation(
                        p.step,
                        f"watch {p.watch_id} from {w['start']} ended with an ERROR "
                        f"({obj.get('code')} {obj.get('message')}) though the store was only "
                        f"compacted to {p.compact_revision}",
                        watch=p.watch_id,
                        start=w["start"],
                        compact=p.compact_revision,
                    )
                w["done"] = True
                return []
            meta = (e.get("object") or {}).get("metadata") or {}
            ns = meta.get("namespace")
            in_ns = bool(ns) and prefix.endswith(f"/{ns}/".encode())
            name = f"{ns}/{meta.get('name')}" if ns and not in_ns else str(meta.get("name"))
            item = (typ, name, int(meta.get("resourceVersion", 0)))
            if w["initial_left"] > 0:
                w["initial_left"] -= 1
                w["initial_seen"].append(item)
                if w["initial_left"] == 0 and sorted(w["initial_seen"]) != sorted(w["initial"]):
                    return self.violation(
                        p.step,
                        f"watch {p.watch_id}: its initial events do not show the state at "
                        f"{w['start']}",
                        watch=p.watch_id,
                        expected=w["initial"],
                        delivered=w["initial_seen"],
                    )
                continue
            w["delivered"].append(item)
        expected = self._expected(prefix, w["start"], p.progress)
        delivered = w["delivered"]
        if delivered != expected:
            first = next(
                (i for i, (a, b) in enumerate(zip(delivered, expected, strict=False)) if a != b),
                min(len(delivered), len(expected)),
            )
            return self.violation(
                p.step,
                f"watch {p.watch_id} from {w['start']} on {prefix.decode()}: delivered "
                f"{len(delivered)} events but the store made {len(expected)} changes through "
                f"{p.progress}; first difference at #{first}: delivered "
                f"{delivered[first] if first < len(delivered) else None}, expected "
                f"{expected[first] if first < len(expected) else None}",
                watch=p.watch_id,
                start=w["start"],
                progress=p.progress,
                delivered=delivered[first : first + 3],
                expected=expected[first : first + 3],
            )
        if p.done:
            w["done"] = True
        return []


def _authz_denial(status: int, body: Mapping[str, Any] | None) -> bool:
    if status != 403 or not isinstance(body, Mapping):
        return False
    msg = str(body.get("message", ""))
    return 'User "' in msg and " cannot " in msg


def _escalation_denial(status: int, body: Mapping[str, Any] | None) -> bool:
    if status != 403 or not isinstance(body, Mapping):
        return False
    return "is attempting to grant RBAC permissions not currently held" in str(
        body.get("message", "")
    )


_RBAC_KINDS = {
    "roles": "Role",
    "clusterroles": "ClusterRole",
    "rolebindings": "RoleBinding",
    "clusterrolebindings": "ClusterRoleBinding",
}


class Authorized(_Base):
    """API-AUTHORIZED; see the module docstring."""

    ID = API_AUTHORIZED

    def __init__(self, log: ChangeLog) -> None:
        super().__init__(log)
        self.snap: model.RbacSnapshot | None = None
        self.request_id = 0

    def before_execution(self, step: int, request: ApiRequest, store: MVCCStore) -> None:
        super().before_execution(step, request, store)
        self.snap = snapshot(store)
        self.request_id = id(request)

    def on_execution(self, ex: Execution, store: MVCCStore) -> list[Violation]:
        snap = self.snap
        if snap is None or self.request_id != id(ex.request):
            return []
        req = ex.request
        user = req.user
        if user is None:
            return []
        groups = frozenset(user.groups)
        r = model.request_of(user.name, groups, req.method, req.path, req.query)
        allow = model.allowed(snap, r)
        denied = _authz_denial(ex.status, ex.body)
        if denied and allow:
            return self.violation(
                ex.step,
                f"{user.name} was refused {req.method} {req.path} ({r.verb}) though RBAC allows it",
                user=user.name,
                verb=r.verb,
                path=req.path,
                server_message=str((ex.body or {}).get("message")),
            )
        if not allow and not denied:
            return self.violation(
                ex.step,
                f"{user.name} was not refused {req.method} {req.path} ({r.verb}) though RBAC "
                f"denies it (answer {ex.status})",
                user=user.name,
                verb=r.verb,
                path=req.path,
                status=ex.status,
            )
        if not allow:
            return []
        found = self._review(ex, snap, user.name, groups)
        if found:
            return found
        return self._escalation(ex, snap, r, user.name, groups)

    def _review(
        self, ex: Execution, snap: model.RbacSnapshot, user: str, groups: frozenset[str]
    ) -> list[Violation]:
        if not ex.request.path.endswith("/selfsubjectaccessreviews") or ex.status != 201:
            return []
        spec = (ex.body or {}).get("spec") or {}
        ra = spec.get("resourceAttributes")
        if not isinstance(ra, Mapping):
            return []
        q = model.Req(
            user,
            groups,
            str(ra.get("verb", "")),
            True,
            str(ra.get("group", "")),
            str(ra.get("resource", "")),
            str(ra.get("subresource", "")),
            str(ra.get("namespace", "")),
            str(ra.get("name", "")),
        )
        want = model.allowed(snap, q)
        got = bool(((ex.body or {}).get("status") or {}).get("allowed"))
        if want != got:
            return self.violation(
                ex.step,
                f"SelfSubjectAccessReview for {user} {q.verb} {q.resource} in {q.namespace!r} "
                f"answered allowed={got}, the RBAC model says {want}",
                user=user,
                attributes=dict(ra),
            )
        return []

    def _escalation(
        self,
        ex: Execution,
        snap: model.RbacSnapshot,
        r: model.Req,
        user: str,
        groups: frozenset[str],
    ) -> list[Violation]:
        req = ex.request
        if req.method not in ("POST", "PUT") or r.group != RBAC or r.subresource:
            return []
        kind = _RBAC_KINDS.get(r.resource)
        if kind is None:
            return []
        try:
            obj = json.loads(req.body)
        except ValueError:
            return []
        if not isinstance(obj, dict):
            return []
        may = model.may_write_rbac(
            snap, user, groups, kind, r.namespace, obj, creating=req.method == "POST"
        )
        ok = 200 <= ex.status < 300
        if ok and not may:
            return self.violation(
                ex.step,
                f"{user} wrote {kind} {req.path} granting permissions they do not hold "
                "(privilege escalation)",
                user=user,
                path=req.path,
                body=obj,
            )
        if may and _escalation_denial(ex.status, ex.body):
            return self.violation(
                ex.step,
                f"{user} was refused writing {kind} {req.path} as an escalation, but they hold "
                "every permission it grants",
                user=user,
                path=req.path,
                body=obj,
                server_message=str((ex.body or {}).get("message")),
            )
        return []


def api_checkers() -> list[Any]:
    """Fresh checkers for one run, one per API invariant, sharing one change log."""
    log = ChangeLog()
    return [RvMonotonic(log), NoLostUpdate(log), WatchComplete(log), Authorized(log)]


def checker_ids() -> Sequence[str]:
    return (API_RV_MONOTONIC, API_NO_LOST_UPDATE, API_WATCH_COMPLETE, API_AUTHORIZED)
