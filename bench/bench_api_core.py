"""Requests per second through the pure API server core (no HTTP), and campaign speed.

Run: python bench/bench_api_core.py [N]   (N pods, default 1000)
Prints one figure per line; measures, never gates.
"""

from __future__ import annotations

import json
import sys
import time

from kubeproof.api import ApiRequest, ApiServer, UserInfo
from kubeproof.mvcc import MVCCStore

ADMIN = UserInfo("admin", ("system:masters", "system:authenticated"))
BOB = UserInfo("bob", ("system:authenticated",))
TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"


def rate(label: str, n: int, fn: object) -> None:
    assert callable(fn)
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    dt = time.perf_counter() - t
    print(f"{label:<44} {n / dt:>10.0f} req/s   ({dt / n * 1e6:.0f} us each)")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    store = MVCCStore()
    api = ApiServer(store)
    api.handle(
        ApiRequest("POST", "/api/v1/namespaces", body=b'{"metadata":{"name":"b"}}', user=ADMIN)
    )
    role = {
        "metadata": {"name": "r"},
        "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "create"]}],
    }
    api.handle(
        ApiRequest(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/b/roles",
            body=json.dumps(role).encode(),
            user=ADMIN,
        )
    )
    rb = {
        "metadata": {"name": "r"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"},
        "subjects": [{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}],
    }
    api.handle(
        ApiRequest(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/b/rolebindings",
            body=json.dumps(rb).encode(),
            user=ADMIN,
        )
    )

    def body(i: int) -> bytes:
        return json.dumps(
            {
                "metadata": {"name": f"p{i}", "labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "image": "nginx:1"}]},
            }
        ).encode()

    rate(
        "create pod (system:masters)",
        n,
        lambda i: api.handle(
            ApiRequest("POST", "/api/v1/namespaces/b/pods", body=body(i), user=ADMIN)
        ),
    )
    rate(
        "create pod (RBAC user)",
        n // 2,
        lambda i: api.handle(
            ApiRequest("POST", "/api/v1/namespaces/b/pods", body=body(n + i), user=BOB)
        ),
    )
    rate(
        "get pod (RBAC user)",
        n,
        lambda i: api.handle(ApiRequest("GET", f"/api/v1/namespaces/b/pods/p{i}", user=BOB)),
    )
    total = n + n // 2
    rate(
        f"list {total} pods (JSON)",
        20,
        lambda i: api.handle(ApiRequest("GET", "/api/v1/namespaces/b/pods", user=ADMIN)),
    )
    rate(
        f"list {total} pods (Table)",
        20,
        lambda i: api.handle(
            ApiRequest("GET", "/api/v1/namespaces/b/pods", accept=TABLE, user=ADMIN)
        ),
    )
    rate(
        "list 500 pods (limit=500 page)",
        20,
        lambda i: api.handle(
            ApiRequest("GET", "/api/v1/namespaces/b/pods", {"limit": "500"}, user=ADMIN)
        ),
    )

    from kubeproof.sim.apisim import ApiSimConfig, run_api_simulation
    from kubeproof.spec.api import api_checkers

    t = time.perf_counter()
    reqs = 0
    for seed in range(10):
        r = run_api_simulation(seed, ApiSimConfig(), api_checkers())
        reqs += r.counters["requests"]
    dt = time.perf_counter() - t
    print(
        f"{'api campaign (10 seeds x 400 ops, checked)':<44} {reqs / dt:>10.0f} req/s   ({dt / 10:.2f} s a seed)"
    )


if __name__ == "__main__":
    main()
