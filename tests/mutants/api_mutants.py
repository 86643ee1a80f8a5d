"""Deliberately broken API servers: each breaks exactly one rule.

The API campaign (`kubeproof check api`, with the spec's invariants) must
catch every one of them within a few seeds; tests/test_api_campaign.py
asserts it.  A mutant is an `ApiServer` subclass overriding one method.
"""

from __future__ import annotations

from typing import Any

from kubeproof.api import ApiServer, Attributes, Decision, RBACAuthorizer, ResourceInfo
from kubeproof.api.rbac import (
    MASTERS,
    group_matches,
    name_matches,
    rules_for,
    verb_matches,
)


# 1. Accept an update that names a stale resourceVersion (a lost update).
class StaleUpdateServer(ApiServer):
    def check_precondition(self, info: ResourceInfo, name: str, given: str, current: str) -> None:
        return None  # BUG: no optimistic concurrency check


# 2. RBAC matching a resource by prefix ("pod" grants "pods", "pods" grants "pods/status").
class _PrefixAuthorizer(RBACAuthorizer):
    def authorize(self, attrs: Attributes) -> Decision:
        if MASTERS in attrs.user.groups:
            return Decision(True)
        if not attrs.resource_request:
            return super().authorize(attrs)
        state = self.source()
        combined = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
        rules = rules_for(state, attrs.user, attrs.namespace)
        for r in rules:
            if not (verb_matches(r, attrs.verb) and group_matches(r, attrs.api_group)):
                continue
            if not name_matches(r, attrs.name):
                continue
            # BUG: a rule's resource matches any requested resource it is a prefix of.
            if any(res == "*" or combined.startswith(res) for res in r.resources):
                return Decision(True, "prefix")
        return Decision(False)


class PrefixRbacServer(ApiServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.authorizer = _PrefixAuthorizer(self.rbac.state)


# 3. A watch from resourceVersion N that starts after N + 1, missing the first change.
class SkipFirstWatchEventServer(ApiServer):
    def watch_start_revision(self, rv: int) -> int:
        return rv + 2  # BUG: should be rv + 1


MUTANTS = {
    "stale-update": StaleUpdateServer,
    "rbac-prefix": PrefixRbacServer,
    "watch-skip-start": SkipFirstWatchEventServer,
}
