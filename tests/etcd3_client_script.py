"""Drives the `etcd3` Python client (0.12) against an etcd endpoint; run as a script.

Usage: ``python tests/etcd3_client_script.py HOST PORT``.  Prints one JSON
object with what each step observed; exits non-zero on the first failed
expectation.  It runs in its own process (see tests/test_etcd_server.py)
because etcd3 0.12's generated code needs
``PROTOCOL_BUFFERS_PYTHON_IMPLEMENTATION=python`` with a current protobuf,
which must be set before protobuf is first imported, and because its
descriptors (packages ``etcdserverpb``/``mvccpb``) would clash with
kubeproof's own in one descriptor pool.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import Any


def main(host: str, port: int) -> dict[str, Any]:
    import etcd3  # type: ignore[import-untyped]

    out: dict[str, Any] = {}
    c = etcd3.client(host=host, port=port, timeout=10)

    def check(name: str, got: Any, want: Any) -> None:
        out[name] = got
        if got != want:
            raise AssertionError(f"{name}: got {got!r}, want {want!r}")

    c.put("/py/a", "1")
    c.put("/py/b", "2")
    value, meta = c.get("/py/a")
    check("get", (value, meta.key, meta.version), (b"1", b"/py/a", 1))
    check("get_missing", c.get("/py/none"), (None, None))
    check(
        "get_prefix",
        sorted((v, m.key) for v, m in c.get_prefix("/py/")),
        [(b"1", b"/py/a"), (b"2", b"/py/b")],
    )

    # Transactions: a compare-and-swap that succeeds, then one that fails.
    ok, _ = c.transaction(
        compare=[c.transactions.value("/py/a") == "1"],
        success=[c.transactions.put("/py/a", "11")],
        failure=[c.transactions.put("/py/a", "never")],
    )
    check("txn_success", ok, True)
    ok, responses = c.transaction(
        compare=[c.transactions.version("/py/a") == 1],
        success=[c.transactions.put("/py/a", "never")],
        failure=[c.transactions.get("/py/a")],
    )
    check("txn_failure", ok, False)
    check("txn_failure_read", [v for v, _ in responses[0]], [b"11"])

    # Watch with a callback: two puts and a delete arrive in order.
    seen: list[tuple[str, bytes, bytes]] = []
    done = threading.Event()

    def callback(resp: Any) -> None:
        for ev in resp.events:
            seen.append((type(ev).__name__, ev.key, ev.value))
        if len(seen) >= 3:
            done.set()

    watch_id = c.add_watch_callback("/py/w", callback)
    c.put("/py/w", "x")
    c.put("/py/w", "y")
    c.delete("/py/w")
    if not done.wait(10):
        raise AssertionError(f"watch callback saw only {seen!r}")
    c.cancel_watch(watch_id)
    check(
        "watch_events",
        seen[:3],
        [
            ("PutEvent", b"/py/w", b"x"),
            ("PutEvent", b"/py/w", b"y"),
            ("DeleteEvent", b"/py/w", b""),
        ],
    )

    # Leases: grant, attach, refresh, time-to-live, revoke deletes the key.
    lease = c.lease(30)
    c.put("/py/leased", "v", lease=lease)
    refreshed = lease.refresh()
    check("lease_refresh_ttl", refreshed[0].TTL, 30)
    check("lease_granted_ttl", lease.granted_ttl, 30)
    check("lease_keys", lease.keys, [b"/py/leased"])
    remaining = lease.remaining_ttl
    out["lease_remaining"] = remaining
    if not 0 < remaining <= 30:
        raise AssertionError(f"remaining TTL {remaining}")
    lease.revoke()
    check("lease_revoked_key", c.get("/py/leased"), (None, None))

    check("delete", c.delete("/py/b"), True)
    check("delete_missing", c.delete("/py/b"), False)
    c.delete_prefix("/py/")
    check("after_delete_prefix", list(c.get_prefix("/py/")), [])

    status = c.status()
    out["status"] = {
        "version": status.version,
        "leader": status.leader.id if status.leader is not None else None,
    }
    if status.leader is None:
        raise AssertionError("status() found no leader among the members")
    out["members"] = sorted(m.name for m in c.members)
    c.close()
    return out


if __name__ == "__main__":
    result = main(sys.argv[1], int(sys.argv[2]))
    print(json.dumps(result, default=repr))
