"""A Hypothesis state machine over the API server, judged by the spec's API invariants.

Rules are client actions (create, update from any version a client has seen,
patch, delete with and without preconditions, list, watch from a list's
version or from none, poll a watch, compact the store, restart the server,
grant or revoke a user's role, requests by that user); after each one the
spec's checkers (API-RV-MONOTONIC, API-NO-LOST-UPDATE, API-WATCH-COMPLETE,
API-AUTHORIZED) must report nothing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from kubeproof.api import ApiRequest, ApiResponse, ApiServer, UserInfo
from kubeproof.mvcc import MVCCStore
from kubeproof.sim.apisim import Execution, WatchOpen, WatchPoll
from kubeproof.spec.api import api_checkers

from .api_helpers import ADMIN, Clock, Uids
from .mutants.api_mutants import PrefixRbacServer, StaleUpdateServer

RBAC = "rbac.authorization.k8s.io"
BOB = UserInfo("bob", ("system:authenticated",))
NAMES = st.sampled_from(["a", "b", "c"])
CM = "/api/v1/namespaces/x/configmaps"


class ApiMachine(RuleBasedStateMachine):
    server_class: type[ApiServer] = ApiServer

    @initialize()
    def start(self) -> None:
        self.store = MVCCStore()
        self.clock = Clock()
        self.uids = Uids()
        self.api = self.server_class(self.store, now=self.clock, uid_source=self.uids)
        self.checkers = api_checkers()
        self.violations: list[Any] = []
        self.step = 0
        self.seen: list[dict[str, Any]] = []
        self.list_rvs: list[str] = []
        self.watches: dict[int, Any] = {}
        self.next_watch = 0
        for c in self.checkers:
            self.violations += c.on_start(self.store)
        self.call(
            ApiRequest(
                "POST",
                "/api/v1/namespaces",
                body=json.dumps({"metadata": {"name": "x"}}).encode(),
                user=ADMIN,
            )
        )

    def call(self, req: ApiRequest) -> ApiResponse:
        self.step += 1
        for c in self.checkers:
            c.before_execution(self.step, req, self.store)
        before = self.store.revision
        resp = self.api.handle(req)
        wid = None
        if resp.watch is not None:
            self.next_watch += 1
            wid = self.next_watch
        ex = Execution(self.step, 0, req, resp.status, resp.body, before, self.store.revision, wid)
        for c in self.checkers:
            self.violations += c.on_execution(ex, self.store)
        if resp.watch is not None and wid is not None:
            self.watches[wid] = resp.watch
            wo = WatchOpen(
                self.step, wid, 0, req.path, req.param("resourceVersion"), self.store.revision
            )
            for c in self.checkers:
                self.violations += c.on_watch_open(wo, self.store)
        if resp.status < 300 and resp.body and resp.body.get("kind") == "ConfigMap":
            self.seen.append(dict(resp.body))
        return resp

    @rule(name=NAMES, value=st.integers(0, 3))
    def create(self, name: str, value: int) -> None:
        self.call(
            ApiRequest(
                "POST",
                CM,
                body=json.dumps({"metadata": {"name": name}, "data": {"v": str(value)}}).encode(),
                user=ADMIN,
            )
        )

    @precondition(lambda self: bool(self.seen))
    @rule(data=st.data(), value=st.integers(0, 3))
    def update_from_a_seen_version(self, data: st.DataObject, value: int) -> None:
        obj = json.loads(json.dumps(data.draw(st.sampled_from(self.seen))))
        obj["data"] = {"v": str(value)}
        self.call(
            ApiRequest(
                "PUT", f"{CM}/{obj['metadata']['name']}", body=json.dumps(obj).encode(), user=ADMIN
            )
        )

    @rule(name=NAMES, value=st.integers(0, 3))
    def patch(self, name: str, value: int) -> None:
        body = json.dumps({"data": {"v": str(value)}}).encode()
        self.call(
            ApiRequest(
                "PATCH",
                f"{CM}/{name}",
                body=body,
                content_type="application/merge-patch+json",
                user=ADMIN,
            )
        )

    @rule(name=NAMES, data=st.data())
    def delete(self, name: str, data: st.DataObject) -> None:
        body = b""
        flip: bool = data.draw(st.booleans())
        if self.seen and flip:
            rv = data.draw(st.sampled_from(self.seen))["metadata"]["resourceVersion"]
            body = json.dumps({"preconditions": {"resourceVersion": rv}}).encode()
        self.call(ApiRequest("DELETE", f"{CM}/{name}", body=body, user=ADMIN))

    @rule(limit=st.sampled_from(["", "1", "2"]))
    def list_configmaps(self, limit: str) -> None:
        resp = self.call(ApiRequest("GET", CM, {"limit": limit} if limit else {}, user=ADMIN))
        if resp.status == 200 and resp.body is not None:
            self.list_rvs.append(resp.body["metadata"]["resourceVersion"])

    @rule(data=st.data())
    def watch(self, data: st.DataObject) -> None:
        q: dict[str, str] = {"watch": "true"}
        flip: bool = data.draw(st.booleans())
        if self.list_rvs and flip:
            # Mostly the latest list's version, as a reflector does.
            back = data.draw(st.integers(0, len(self.list_rvs) - 1))
            q["resourceVersion"] = self.list_rvs[-1 - back // 2]
        self.call(ApiRequest("GET", CM, q, user=ADMIN))

    @precondition(lambda self: bool(self.watches))
    @rule(data=st.data())
    def poll(self, data: st.DataObject) -> None:
        wid = data.draw(st.sampled_from(sorted(self.watches)))
        w = self.watches[wid]
        events = tuple(w.poll())
        p = WatchPoll(self.step, wid, events, w.progress, self.store.compact_revision, w.done)
        for c in self.checkers:
            self.violations += c.on_watch_poll(p, self.store)
        if w.done:
            del self.watches[wid]

    @rule(back=st.integers(0, 5))
    def compact(self, back: int) -> None:
        rev = self.store.revision - back
        if rev > max(self.store.compact_revision, 1):
            self.store.compact(rev)

    @rule()
    def restart_server(self) -> None:
        for w in self.watches.values():
            w.close()
        self.watches.clear()
        self.api.close()
        self.api = self.server_class(self.store, now=self.clock, uid_source=self.uids)

    @rule(
        verbs=st.lists(
            st.sampled_from(["get", "list", "watch", "update", "delete", "*"]),
            min_size=1,
            max_size=2,
            unique=True,
        ),
        resource=st.sampled_from(["configmaps", "configmap", "*", "configmaps/status"]),
    )
    def grant_bob(self, verbs: list[str], resource: str) -> None:
        role = {
            "metadata": {"name": "bob"},
            "rules": [{"apiGroups": [""], "resources": [resource], "verbs": verbs}],
        }
        self.call(
            ApiRequest(
                "PUT",
                f"/apis/{RBAC}/v1/namespaces/x/roles/bob",
                body=json.dumps(role).encode(),
                user=ADMIN,
            )
        )
        binding = {
            "metadata": {"name": "bob"},
            "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": "bob"},
            "subjects": [{"kind": "User", "name": "bob", "apiGroup": RBAC}],
        }
        self.call(
            ApiRequest(
                "PUT",
                f"/apis/{RBAC}/v1/namespaces/x/rolebindings/bob",
                body=json.dumps(binding).encode(),
                user=ADMIN,
            )
        )

    @rule()
    def revoke_bob(self) -> None:
        self.call(
            ApiRequest("DELETE", f"/apis/{RBAC}/v1/namespaces/x/rolebindings/bob", user=ADMIN)
        )

    @rule(name=NAMES, method=st.sampled_from(["GET", "DELETE", "LIST", "WATCH"]))
    def bob_acts(self, name: str, method: str) -> None:
        if method == "LIST":
            self.call(ApiRequest("GET", CM, user=BOB))
        elif method == "WATCH":
            self.call(ApiRequest("GET", CM, {"watch": "true"}, user=BOB))
        else:
            self.call(ApiRequest(method, f"{CM}/{name}", user=BOB))

    @invariant()
    def no_violation(self) -> None:
        if not hasattr(self, "checkers"):
            return
        for c in self.checkers:
            self.violations += c.on_store(self.store)
        assert not self.violations, self.violations[0]
        assert self.api.internal_errors == 0, self.api.last_internal_error


ApiMachine.TestCase.settings = settings(max_examples=30, stateful_step_count=40, deadline=None)
TestApiMachine = ApiMachine.TestCase


# The third mutant (a watch that skips its first event) is caught by the
# campaign (tests/test_api_campaign.py) within a couple of seeds; here it takes
# Hypothesis a few hundred examples, too slow for CI.
@pytest.mark.parametrize("mutant", [StaleUpdateServer, PrefixRbacServer])
def test_the_machine_catches_the_mutants(mutant: type[ApiServer]) -> None:
    class Broken(ApiMachine):
        server_class = mutant

    with pytest.raises(AssertionError):
        run_state_machine_as_test(  # type: ignore[no-untyped-call,unused-ignore]
            Broken,
            settings=settings(
                max_examples=300,
                stateful_step_count=40,
                deadline=None,
                database=None,
                phases=(Phase.generate,),
                suppress_health_check=list(HealthCheck),
            ),
        )
