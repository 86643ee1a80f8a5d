"""A seeded simulation of concurrent API clients against API server instances.

Theory of operation
-------------------
One run is a seed and an `ApiSimConfig`.  It builds an MVCC store and
``servers`` API server instances over it (what several kube-apiservers over
one etcd are), then ``clients``, each acting as one user (the admin in
system:masters, users with and without RBAC bindings, a service account).
Every step draws, from the seeded RNG only:

* faults (if enabled): crash an API server instance (its watch streams and
  its RBAC cache are lost; a client whose request was in flight to it gets
  nothing back) and restart it later as a fresh instance; compact the store
  a few revisions behind its head (so that old watches and continue tokens
  expire);
* one client operation, sent as a request message: create, get, list
  (paged, with selectors), update from the client's cached copy (often a
  stale version), patch, delete (sometimes with preconditions),
  deletecollection, watch (from a list's version, from the last seen
  version, or from none), RBAC changes (by the admin, and escalation
  attempts by others), access reviews, and requests to arbitrary paths;
* the delivery of in-flight requests to their server, where with faults a
  request may be dropped, duplicated (run twice) or overtaken by a later
  one, and its response dropped, duplicated or reordered on the way back;
* polls of open watch streams (with ``delay``, polls are withheld for
  stretches and then come in bursts).

Nothing here judges correctness: every execution (request, response, the
store revision and the target key's version before and after), every watch
opened and every batch of watch events is handed to the injected checkers
(the spec's, wired by the composition root), which return violations.  A
run stops at its first violation.  Same seed and config, same run.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from attrs import define, field, frozen

from kubeproof.api import ApiRequest, ApiResponse, ApiServer, Store, UserInfo, WatchStream
from kubeproof.mvcc import MVCCStore

from .observe import Violation

API_FAULTS = ("compact", "crash", "delay", "drop", "dup", "reorder")


class ApiSimConfigError(ValueError):
    pass


def parse_api_faults(text: str) -> frozenset[str]:
    """'all', 'none' or a comma list of compact,crash,delay,drop,dup,reorder."""
    t = text.strip()
    if t == "all":
        return frozenset(API_FAULTS)
    if t in ("none", ""):
        return frozenset()
    out = set()
    for part in t.split(","):
        p = part.strip()
        if p not in API_FAULTS:
            raise ApiSimConfigError(
                f"unknown fault {p!r} for the api target; choose from {', '.join(API_FAULTS)}, "
                "all, none"
            )
        out.add(p)
    return frozenset(out)


@frozen
class ApiSimConfig:
    servers: int = 2
    clients: int = 6
    steps: int = 400
    faults: frozenset[str] = frozenset(API_FAULTS)
    drop_rate: float = 0.05
    dup_rate: float = 0.05
    crash_rate: float = 0.01
    compact_rate: float = 0.03

    def to_json(self) -> dict[str, Any]:
        return {
            "servers": self.servers,
            "clients": self.clients,
            "steps": self.steps,
            "faults": sorted(self.faults),
            "drop_rate": self.drop_rate,
            "dup_rate": self.dup_rate,
            "crash_rate": self.crash_rate,
            "compact_rate": self.compact_rate,
        }


# ---------------------------------------------------------------------------
# What the checkers see


@frozen
class Execution:
    """One request run by one server instance."""

    step: int
    server: int
    request: ApiRequest
    status: int
    body: Mapping[str, Any] | None
    revision_before: int
    revision_after: int
    watch_id: int | None = None


@frozen
class WatchOpen:
    step: int
    watch_id: int
    server: int
    path: str
    resource_version: str | None
    """The resourceVersion the watch was opened from (None: unset)."""
    list_revision: int
    """The store revision when it was opened (the state synthetic events show)."""


@frozen
class WatchPoll:
    step: int
    watch_id: int
    events: tuple[Mapping[str, Any], ...]
    progress: int
    """The revision through which the stream says everything was delivered."""
    compact_revision: int
    done: bool


class ApiChecker(Protocol):
    ID: str

    def on_start(self, store: MVCCStore) -> list[Violation]: ...

    def on_execution(self, ex: Execution, store: MVCCStore) -> list[Violation]: ...

    def before_execution(self, step: int, request: ApiRequest, store: MVCCStore) -> None: ...

    def on_watch_open(self, w: WatchOpen, store: MVCCStore) -> list[Violation]: ...

    def on_watch_poll(self, p: WatchPoll, store: MVCCStore) -> list[Violation]: ...

    def on_store(self, store: MVCCStore) -> list[Violation]: ...


ServerFactory = Callable[..., ApiServer]
ApiCheckersFactory = Callable[[], Sequence[ApiChecker]]


# ---------------------------------------------------------------------------
# Users and objects

RBAC_G = "rbac.authorization.k8s.io"
ADMIN = UserInfo("admin", ("system:masters", "system:authenticated"))
USERS = (
    ADMIN,
    UserInfo("alice", ("devs", "system:authenticated")),
    UserInfo("bob", ("devs", "system:authenticated")),
    UserInfo("carol", ("system:authenticated",)),
    UserInfo(
        "system:serviceaccount:ns1:robot",
        ("system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"),
    ),
    UserInfo("eve", ("system:authenticated",)),
)
NAMESPACES = ("ns1", "ns2")
KINDS = ("configmaps", "pods")
NAMES = ("a", "b", "c", "d")
VERBS = ("get", "list", "watch", "create", "update", "patch", "delete", "escalate", "bind", "*")
RESOURCES = (
    "pods",
    "configmaps",
    "pods/status",
    "*/status",
    "roles",
    "rolebindings",
    "clusterroles",
    "*",
    "pod",
)
GROUPS = ("", "apps", RBAC_G, "*")
ROLE_NAMES = ("r1", "r2", "r3")


@define
class Msg:
    id: int
    client: int
    server: int
    request: ApiRequest
    kind: str
    meta: dict[str, Any] = field(factory=dict)


@define
class Client:
    index: int
    user: UserInfo
    cache: dict[str, dict[str, Any]] = field(factory=dict)
    """path of an object -> the last copy the client saw (stale copies stay)."""
    old: dict[str, list[dict[str, Any]]] = field(factory=dict)
    list_rv: dict[str, str] = field(factory=dict)
    continue_token: dict[str, str] = field(factory=dict)


@define
class OpenWatch:
    id: int
    client: int
    server: int
    incarnation: int
    path: str
    stream: WatchStream
    last_rv: str = ""


@frozen
class ApiRunResult:
    seed: int
    violation: Violation | None
    counters: dict[str, int]
    events: tuple[dict[str, Any], ...] = ()
    internal_errors: int = 0


def _now_of(t: list[int]) -> Callable[[], str]:
    def now() -> str:
        s = t[0]
        return f"2026-01-01T{(s // 3600) % 24:02d}:{(s // 60) % 60:02d}:{s % 60:02d}Z"

    return now


class ApiSimulation:
    def __init__(
        self,
        seed: int,
        config: ApiSimConfig,
        checkers: Sequence[ApiChecker],
        server_factory: ServerFactory = ApiServer,
        record: bool = False,
    ) -> None:
        self.seed = seed
        self.cfg = config
        self.rng = random.Random(seed)
        self.store = MVCCStore()
        self.checkers = list(checkers)
        self.factory = server_factory
        self.record = record
        self.events: list[dict[str, Any]] = []
        self.clock = [0]
        self.step_no = 0
        self.uid_counter = [0]
        self.counters: dict[str, int] = {
            "requests": 0,
            "writes_ok": 0,
            "conflicts": 0,
            "forbidden": 0,
            "not_found": 0,
            "invalid": 0,
            "watch_events": 0,
            "watches": 0,
            "expired": 0,
            "crashes": 0,
            "compactions": 0,
            "dropped": 0,
            "duplicated": 0,
            "rbac_writes": 0,
        }
        self.servers: list[ApiServer | None] = []
        self.incarnation: list[int] = []
        self.down_until: list[int] = []
        for i in range(config.servers):
            self.servers.append(self._new_server(i))
            self.incarnation.append(0)
            self.down_until.append(0)
        self.clients = [
            Client(i, USERS[i % len(USERS)] if i else ADMIN) for i in range(config.clients)
        ]
        self.inflight: list[Msg] = []
        self.responses: list[tuple[Msg, ApiResponse]] = []
        self.watches: dict[int, OpenWatch] = {}
        self.next_msg = 0
        self.next_watch = 0
        self.delay_until = 0
        self.violation: Violation | None = None
        self.internal_errors = 0

    # ------------------------------------------------------------------

    def _uid(self) -> str:
        self.uid_counter[0] += 1
        return f"{self.seed:08x}-0000-4000-8000-{self.uid_counter[0]:012x}"

    def _new_server(self, index: int) -> ApiServer:
        return self.factory(self.store, now=_now_of(self.clock), uid_source=self._uid)

    def _check(self, found: list[Violation]) -> None:
        if found and self.violation is None:
            self.violation = found[0]

    def _event(self, kind: str, **payload: Any) -> None:
        if self.record:
            self.events.append(
                {"step": self.step_no, "time": self.clock[0], "kind": kind, "payload": payload}
            )

    # ------------------------------------------------------------------

    def run(self) -> ApiRunResult:
        for c in self.checkers:
            self._check(c.on_start(self.store))
        self._setup()
        for _ in range(self.cfg.steps):
            if self.violation is not None:
                break
            self.step_no += 1
            self.clock[0] += 1
            self._step()
            for c in self.checkers:
                self._check(c.on_store(self.store))
        # Drain: deliver what is in flight, poll every stream once more.
        if self.violation is None:
            while self.inflight and self.violation is None:
                self._deliver(self.inflight.pop(0))
            self._poll_all(force=True)
        for s in self.servers:
            if s is not None:
                self.internal_errors += s.internal_errors
        return ApiRunResult(
            self.seed, self.violation, dict(self.counters), tuple(self.events), self.internal_errors
        )

    def _setup(self) -> None:
        admin = self.clients[0]
        for ns in NAMESPACES:
            self._execute(
                0,
                admin,
                ApiRequest(
                    "POST", "/api/v1/namespaces", body=_j({"metadata": {"name": ns}}), user=ADMIN
                ),
                "setup",
            )
        # A starting policy: devs may read pods cluster-wide; alice edits in ns1.
        for body, path in (
            (
                {
                    "metadata": {"name": "reader"},
                    "rules": [
                        {
                            "apiGroups": [""],
                            "resources": ["pods", "configmaps"],
                            "verbs": ["get", "list", "watch"],
                        }
                    ],
                },
                f"/apis/{RBAC_G}/v1/clusterroles",
            ),
            (
                {
                    "metadata": {"name": "devs-read"},
                    "roleRef": {"apiGroup": RBAC_G, "kind": "ClusterRole", "name": "reader"},
                    "subjects": [{"kind": "Group", "name": "devs", "apiGroup": RBAC_G}],
                },
                f"/apis/{RBAC_G}/v1/clusterrolebindings",
            ),
            (
                {
                    "metadata": {"name": "bob-edit"},
                    "roleRef": {"apiGroup": RBAC_G, "kind": "ClusterRole", "name": "edit"},
                    "subjects": [{"kind": "User", "name": "bob", "apiGroup": RBAC_G}],
                },
                f"/apis/{RBAC_G}/v1/namespaces/ns2/rolebindings",
            ),
            (
                {
                    "metadata": {"name": "carol-admin"},
                    "roleRef": {"apiGroup": RBAC_G, "kind": "ClusterRole", "name": "admin"},
                    "subjects": [{"kind": "User", "name": "carol", "apiGroup": RBAC_G}],
                },
                f"/apis/{RBAC_G}/v1/namespaces/ns1/rolebindings",
            ),
            (
                {
                    "metadata": {"name": "robot-view"},
                    "roleRef": {"apiGroup": RBAC_G, "kind": "ClusterRole", "name": "view"},
                    "subjects": [{"kind": "ServiceAccount", "name": "robot"}],
                },
                f"/apis/{RBAC_G}/v1/namespaces/ns1/rolebindings",
            ),
            (
                {
                    "metadata": {"name": "alice-edit"},
                    "roleRef": {"apiGroup": RBAC_G, "kind": "ClusterRole", "name": "edit"},
                    "subjects": [{"kind": "User", "name": "alice", "apiGroup": RBAC_G}],
                },
                f"/apis/{RBAC_G}/v1/namespaces/ns1/rolebindings",
            ),
        ):
            self._execute(0, admin, ApiRequest("POST", path, body=_j(body), user=ADMIN), "setup")

    def _step(self) -> None:
        rng = self.rng
        f = self.cfg.faults
        # Restarts of crashed servers.
        for i, s in enumerate(self.servers):
            if s is None and self.step_no >= self.down_until[i]:
                self.servers[i] = self._new_server(i)
                self.incarnation[i] += 1
                self._event("restart", server=i)
        if "crash" in f and rng.random() < self.cfg.crash_rate:
            self._crash(rng.randrange(len(self.servers)))
        if "compact" in f and rng.random() < self.cfg.compact_rate:
            rev = self.store.revision - rng.randint(3, 30)
            if rev > max(self.store.compact_revision, 1):
                self.store.compact(rev)
                self.counters["compactions"] += 1
                self._event("compact", revision=rev)
        if "delay" in f and rng.random() < 0.03:
            self.delay_until = self.step_no + rng.randint(5, 30)
        # A new client operation.
        client = self.clients[rng.randrange(len(self.clients))]
        msg = self._operation(client)
        if msg is not None:
            self.inflight.append(msg)
        # Deliver one or two requests.
        for _ in range(rng.choice((1, 1, 2))):
            if not self.inflight:
                break
            if "reorder" in f and len(self.inflight) > 1 and rng.random() < 0.3:
                m = self.inflight.pop(rng.randrange(len(self.inflight)))
            else:
                m = self.inflight.pop(0)
            if "drop" in f and rng.random() < self.cfg.drop_rate:
                self.counters["dropped"] += 1
                self._event("drop", id=m.id)
                continue
            if "dup" in f and rng.random() < self.cfg.dup_rate:
                self.counters["duplicated"] += 1
                self.inflight.insert(rng.randrange(len(self.inflight) + 1), m)
            self._deliver(m)
        # Responses back to clients.
        while self.responses:
            if "reorder" in f and len(self.responses) > 1 and rng.random() < 0.3:
                m, resp = self.responses.pop(rng.randrange(len(self.responses)))
            else:
                m, resp = self.responses.pop(0)
            if "drop" in f and rng.random() < self.cfg.drop_rate:
                continue
            self._on_response(m, resp)
        # Watch polls.
        if self.step_no >= self.delay_until or rng.random() < 0.05:
            self._poll_all(force=False)

    def _crash(self, i: int) -> None:
        s = self.servers[i]
        if s is None:
            return
        self.counters["crashes"] += 1
        self._event("crash", server=i)
        for wid, w in list(self.watches.items()):
            if w.server == i:
                w.stream.close()
                del self.watches[wid]
                # client-go: re-watch from the last version seen, elsewhere.
                self._rewatch(w)
        s.close()
        self.servers[i] = None
        self.down_until[i] = self.step_no + self.rng.randint(3, 40)
        # Requests in flight to it are lost with the connection.
        self.inflight = [m for m in self.inflight if m.server != i]

    def _rewatch(self, w: OpenWatch) -> None:
        client = self.clients[w.client]
        rv = w.last_rv or client.list_rv.get(w.path, "")
        if not rv:
            return
        server = self._pick_server()
        if server is None:
            return
        self.inflight.append(
            self._msg(
                client,
                server,
                ApiRequest(
                    "GET", w.path, {"watch": "true", "resourceVersion": rv}, user=client.user
                ),
                "watch",
            )
        )

    def _pick_server(self) -> int | None:
        up = [i for i, s in enumerate(self.servers) if s is not None]
        if not up:
            return None
        return up[self.rng.randrange(len(up))]

    def _msg(self, client: Client, server: int, req: ApiRequest, kind: str, **meta: Any) -> Msg:
        self.next_msg += 1
        return Msg(self.next_msg, client.index, server, req, kind, dict(meta))

    # ------------------------------------------------------------------
    # Execution

    def _deliver(self, m: Msg) -> None:
        server = self.servers[m.server]
        if server is None:
            return
        resp = self._execute(m.server, self.clients[m.client], m.request, m.kind)
        if resp is None:
            return
        self.responses.append((m, resp))
        if "dup" in self.cfg.faults and self.rng.random() < self.cfg.dup_rate / 2:
            self.responses.append((m, resp))

    def _execute(
        self, index: int, client: Client, req: ApiRequest, kind: str
    ) -> ApiResponse | None:
        server = self.servers[index]
        assert server is not None
        for c in self.checkers:
            c.before_execution(self.step_no, req, self.store)
        before = self.store.revision
        resp = server.handle(req)
        after = self.store.revision
        self.counters["requests"] += 1
        self._count(req, resp)
        wid = None
        if resp.watch is not None:
            self.next_watch += 1
            wid = self.next_watch
            self.counters["watches"] += 1
        ex = Execution(self.step_no, index, req, resp.status, resp.body, before, after, wid)
        self._event(
            "request",
            server=index,
            user=req.user.name if req.user else None,
            method=req.method,
            path=req.path,
            query={k: list(v) for k, v in req.query.items()},
            status=resp.status,
            reason=(resp.body or {}).get("reason") if resp.status >= 400 else None,
            rv=((resp.body or {}).get("metadata") or {}).get("resourceVersion"),
        )
        for c in self.checkers:
            self._check(c.on_execution(ex, self.store))
        if resp.watch is not None and wid is not None:
            w = OpenWatch(
                wid,
                client.index,
                index,
                self.incarnation[index],
                req.path.split("?")[0],
                resp.watch,
            )
            rv = req.param("resourceVersion")
            w.last_rv = rv or ""
            self.watches[wid] = w
            wo = WatchOpen(self.step_no, wid, index, w.path, rv, self.store.revision)
            for c in self.checkers:
                self._check(c.on_watch_open(wo, self.store))
        return resp

    def _count(self, req: ApiRequest, resp: ApiResponse) -> None:
        st = resp.status
        if req.method in ("POST", "PUT", "PATCH", "DELETE") and 200 <= st < 300:
            self.counters["writes_ok"] += 1
            if RBAC_G in req.path:
                self.counters["rbac_writes"] += 1
        reason = (resp.body or {}).get("reason")
        if st == 409 and reason == "Conflict":
            self.counters["conflicts"] += 1
        elif st == 403:
            self.counters["forbidden"] += 1
        elif st == 404:
            self.counters["not_found"] += 1
        elif st == 422:
            self.counters["invalid"] += 1

    def _poll_all(self, force: bool) -> None:
        for wid in sorted(self.watches):
            w = self.watches.get(wid)
            if w is None:
                continue
            if not force and self.rng.random() < 0.3:
                continue
            events = tuple(w.stream.poll())
            progress = int(getattr(w.stream, "progress", 0))
            for e in events:
                rv = ((e.get("object") or {}).get("metadata") or {}).get("resourceVersion")
                if e.get("type") in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK") and rv:
                    w.last_rv = str(rv)
                if e.get("type") == "ERROR":
                    self.counters["expired"] += 1
            self.counters["watch_events"] += len(events)
            p = WatchPoll(
                self.step_no, wid, events, progress, self.store.compact_revision, w.stream.done
            )
            if events:
                self._event("watch", id=wid, n=len(events), progress=progress)
            for c in self.checkers:
                self._check(c.on_watch_poll(p, self.store))
            if w.stream.done:
                del self.watches[wid]
                if any(e.get("type") == "ERROR" for e in events):
                    # 410: the client re-lists (its next list starts a new watch).
                    self.clients[w.client].list_rv.pop(w.path, None)

    # ------------------------------------------------------------------
    # Client operations

    def _operation(self, client: Client) -> Msg | None:
        server = self._pick_server()
        if server is None:
            return None
        rng = self.rng
        ns = rng.choice(NAMESPACES)
        kind = rng.choice(KINDS)
        coll = f"/api/v1/namespaces/{ns}/{kind}"
        name = rng.choice(NAMES)
        path = f"{coll}/{name}"
        u = client.user
        roll = rng.random()
        if roll < 0.14:
            return self._msg(
                client,
                server,
                ApiRequest("POST", coll, body=_j(_object(kind, name, rng)), user=u),
                "create",
                path=path,
            )
        if roll < 0.22:
            return self._msg(client, server, ApiRequest("GET", path, user=u), "get", path=path)
        if roll < 0.32:
            q: dict[str, Any] = {}
            if rng.random() < 0.4:
                q["limit"] = str(rng.randint(1, 3))
                tok = client.continue_token.get(coll)
                if tok and rng.random() < 0.6:
                    q["continue"] = tok
            if rng.random() < 0.2:
                q["labelSelector"] = rng.choice(
                    ("tier=web", "tier!=web", "tier in (web,db)", "!tier")
                )
            if rng.random() < 0.15:
                q["resourceVersion"] = "0"
            return self._msg(client, server, ApiRequest("GET", coll, q, user=u), "list", path=coll)
        if roll < 0.48:
            cached = client.cache.get(path)
            olds = client.old.get(path) or []
            if olds and rng.random() < 0.4:
                cached = rng.choice(olds)
            if cached is None:
                return self._msg(client, server, ApiRequest("GET", path, user=u), "get", path=path)
            body = json.loads(json.dumps(cached))
            _mutate(kind, body, rng)
            return self._msg(
                client, server, ApiRequest("PUT", path, body=_j(body), user=u), "update", path=path
            )
        if roll < 0.54:
            patch = {"metadata": {"labels": {"tier": rng.choice(("web", "db", None))}}}
            ct = rng.choice(
                ("application/merge-patch+json", "application/strategic-merge-patch+json")
            )
            return self._msg(
                client,
                server,
                ApiRequest("PATCH", path, body=_j(patch), content_type=ct, user=u),
                "patch",
                path=path,
            )
        if roll < 0.60:
            opts: dict[str, Any] = {
                "propagationPolicy": rng.choice(("Background", "Foreground", "Orphan"))
            }
            cached = client.cache.get(path)
            if cached is not None and rng.random() < 0.5:
                opts["preconditions"] = {"resourceVersion": cached["metadata"]["resourceVersion"]}
            q = {"gracePeriodSeconds": "0"} if rng.random() < 0.5 else {}
            return self._msg(
                client,
                server,
                ApiRequest("DELETE", path, q, body=_j(opts), user=u),
                "delete",
                path=path,
            )
        if roll < 0.61:
            return self._msg(
                client,
                server,
                ApiRequest("DELETE", coll, {"labelSelector": "tier=db"}, user=u),
                "deletecollection",
                path=coll,
            )
        if roll < 0.70:
            return self._watch_op(client, server, coll)
        if roll < 0.80:
            return self._rbac_op(client, server)
        if roll < 0.85:
            attrs = {"namespace": ns, "verb": rng.choice(VERBS[:-1]), "resource": kind}
            if rng.random() < 0.3:
                attrs["name"] = name
            body = {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {"resourceAttributes": attrs},
            }
            return self._msg(
                client,
                server,
                ApiRequest(
                    "POST",
                    "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                    body=_j(body),
                    user=u,
                ),
                "ssar",
            )
        if roll < 0.87 and client.user is ADMIN:
            # Namespace churn: delete ns2 (everything in it goes) or bring it back.
            if rng.random() < 0.5:
                return self._msg(
                    client,
                    server,
                    ApiRequest("DELETE", "/api/v1/namespaces/ns2", user=u),
                    "delete-ns",
                )
            return self._msg(
                client,
                server,
                ApiRequest(
                    "POST", "/api/v1/namespaces", body=_j({"metadata": {"name": "ns2"}}), user=u
                ),
                "create-ns",
            )
        # Any request to any path, by anyone: authorization is always judged.
        method, p = rng.choice(
            (
                ("GET", f"/api/v1/namespaces/{ns}"),
                ("GET", "/api/v1/pods"),
                ("GET", f"/api/v1/namespaces/{ns}/pods/{name}/status"),
                ("GET", "/api/v1/nodes"),
                ("GET", f"/apis/apps/v1/namespaces/{ns}/replicasets"),
                ("GET", f"/apis/{RBAC_G}/v1/namespaces/{ns}/roles"),
                ("GET", "/healthz"),
                ("GET", "/api"),
                ("DELETE", f"{coll}/{name}"),
                ("GET", f"{coll}?fieldSelector=metadata.name%3D{name}"),
            )
        )
        q2: dict[str, Any] = {}
        if "?" in p:
            p, _, qs = p.partition("?")
            k, _, v = qs.partition("=")
            q2[k] = v.replace("%3D", "=")
        return self._msg(client, server, ApiRequest(method, p, q2, user=u), "any", path=p)

    def _watch_op(self, client: Client, server: int, coll: str) -> Msg:
        rng = self.rng
        q: dict[str, Any] = {"watch": "true"}
        r = rng.random()
        rv = client.list_rv.get(coll)
        if rv and r < 0.7:
            q["resourceVersion"] = rv
        elif r < 0.8:
            q["resourceVersion"] = str(max(1, self.store.revision - rng.randint(0, 20)))
        if rng.random() < 0.3:
            q["allowWatchBookmarks"] = "true"
        return self._msg(
            client, server, ApiRequest("GET", coll, q, user=client.user), "watch", path=coll
        )

    def _rbac_op(self, client: Client, server: int) -> Msg:
        rng = self.rng
        u = client.user
        ns = rng.choice(NAMESPACES)
        if u is not ADMIN and rng.random() < 0.8:
            # Mostly where a non-admin may write RBAC at all (carol administers
            # ns1): these reach the escalation checks.
            ns = "ns1" if rng.random() < 0.8 else ns
            which = rng.choice(("roles", "rolebindings"))
        else:
            which = rng.choice(("roles", "rolebindings", "clusterroles", "clusterrolebindings"))
        name = rng.choice(ROLE_NAMES)
        if which in ("roles", "rolebindings"):
            coll = f"/apis/{RBAC_G}/v1/namespaces/{ns}/{which}"
        else:
            coll = f"/apis/{RBAC_G}/v1/{which}"
        path = f"{coll}/{name}"
        if rng.random() < 0.15:
            return self._msg(
                client, server, ApiRequest("DELETE", path, user=u), "rbac-delete", path=path
            )
        if which in ("roles", "clusterroles"):
            modest = u is not ADMIN and rng.random() < 0.5
            rules = [
                _modest_rule(rng) if modest else _rule(rng, cluster=which == "clusterroles")
                for _ in range(rng.randint(1, 3))
            ]
            body: dict[str, Any] = {"metadata": {"name": name}, "rules": rules}
        else:
            kind = (
                "ClusterRole" if (which == "clusterrolebindings" or rng.random() < 0.5) else "Role"
            )
            ref_name = rng.choice((*ROLE_NAMES, "reader", "edit", "view", "admin"))
            subjects = []
            for _ in range(rng.randint(1, 2)):
                s = rng.choice(USERS[1:])
                if s.name.startswith("system:serviceaccount:"):
                    subjects.append({"kind": "ServiceAccount", "name": "robot", "namespace": "ns1"})
                elif rng.random() < 0.2:
                    subjects.append({"kind": "Group", "name": "devs", "apiGroup": RBAC_G})
                else:
                    subjects.append({"kind": "User", "name": s.name, "apiGroup": RBAC_G})
            body = {
                "metadata": {"name": name},
                "roleRef": {"apiGroup": RBAC_G, "kind": kind, "name": ref_name},
                "subjects": subjects,
            }
        cached = client.cache.get(path)
        if cached is not None and rng.random() < 0.5:
            body["metadata"]["resourceVersion"] = cached["metadata"]["resourceVersion"]
            if "roleRef" in cached:
                body["roleRef"] = cached["roleRef"]
            return self._msg(
                client,
                server,
                ApiRequest("PUT", path, body=_j(body), user=u),
                "rbac-update",
                path=path,
            )
        return self._msg(
            client,
            server,
            ApiRequest("POST", coll, body=_j(body), user=u),
            "rbac-create",
            path=path,
        )

    def _on_response(self, m: Msg, resp: ApiResponse) -> None:
        client = self.clients[m.client]
        body = resp.body or {}
        path = m.meta.get("path")
        if resp.status < 300 and isinstance(path, str) and body.get("kind") not in (None, "Status"):
            if m.kind == "list":
                client.list_rv[path] = str((body.get("metadata") or {}).get("resourceVersion", ""))
                tok = (body.get("metadata") or {}).get("continue")
                if tok:
                    client.continue_token[path] = tok
                else:
                    client.continue_token.pop(path, None)
                for item in body.get("items") or []:
                    ipath = f"{path}/{item['metadata']['name']}"
                    self._remember(client, ipath, item)
            elif m.kind in ("create", "get", "update", "patch", "rbac-create", "rbac-update"):
                self._remember(client, path, dict(body))
        elif resp.status == 410 and isinstance(path, str):
            client.continue_token.pop(path, None)

    def _remember(self, client: Client, path: str, obj: dict[str, Any]) -> None:
        prev = client.cache.get(path)
        if prev is not None:
            olds = client.old.setdefault(path, [])
            olds.append(prev)
            del olds[:-3]
        client.cache[path] = obj


def _j(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _object(kind: str, name: str, rng: random.Random) -> dict[str, Any]:
    labels = {"tier": rng.choice(("web", "db"))} if rng.random() < 0.7 else {}
    if kind == "configmaps":
        return {"metadata": {"name": name, "labels": labels}, "data": {"k": str(rng.randint(0, 9))}}
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": f"img:{rng.randint(0, 9)}"}]},
    }


def _mutate(kind: str, obj: dict[str, Any], rng: random.Random) -> None:
    obj.setdefault("metadata", {}).setdefault("labels", {})["n"] = str(rng.randint(0, 99))
    if kind == "configmaps":
        obj["data"] = {"k": str(rng.randint(0, 99))}
    elif rng.random() < 0.5:
        for c in (obj.get("spec") or {}).get("containers") or []:
            c["image"] = f"img:{rng.randint(0, 9)}"


def _modest_rule(rng: random.Random) -> dict[str, Any]:
    """A rule an editor of a namespace already holds (so writing it is no escalation)."""
    return {
        "verbs": sorted(
            {rng.choice(("get", "list", "watch", "create", "delete")) for _ in range(2)}
        ),
        "apiGroups": [""],
        "resources": [rng.choice(("pods", "configmaps", "pods/status"))],
    }


def _rule(rng: random.Random, cluster: bool) -> dict[str, Any]:
    verbs = sorted({rng.choice(VERBS) for _ in range(rng.randint(1, 3))})
    if cluster and rng.random() < 0.1:
        return {
            "verbs": verbs,
            "nonResourceURLs": [rng.choice(("/healthz", "/api", "/api/*", "*"))],
        }
    rule: dict[str, Any] = {
        "verbs": verbs,
        "apiGroups": sorted({rng.choice(GROUPS) for _ in range(rng.randint(1, 2))}),
        "resources": sorted({rng.choice(RESOURCES) for _ in range(rng.randint(1, 2))}),
    }
    if rng.random() < 0.2:
        rule["resourceNames"] = sorted(
            {rng.choice(NAMES + ROLE_NAMES) for _ in range(rng.randint(1, 2))}
        )
    return rule


def run_api_simulation(
    seed: int,
    config: ApiSimConfig,
    checkers: Sequence[ApiChecker],
    server_factory: ServerFactory = ApiServer,
    record: bool = False,
) -> ApiRunResult:
    return ApiSimulation(seed, config, checkers, server_factory, record).run()


__all__ = [
    "API_FAULTS",
    "ApiChecker",
    "ApiRunResult",
    "ApiSimConfig",
    "ApiSimConfigError",
    "ApiSimulation",
    "Execution",
    "Store",
    "WatchOpen",
    "WatchPoll",
    "parse_api_faults",
    "run_api_simulation",
]
