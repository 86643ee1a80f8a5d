"""Watch: from a resourceVersion, initial events, selectors, bookmarks, 410, Tables."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from kubeproof.api import StoreWatchStream, WatchStream

from .api_helpers import TABLE, Api, cm, pod


@pytest.fixture
def api() -> Api:
    a = Api()
    a.ns("x")
    return a


def _watch(api: Api, path: str, **query: str) -> StoreWatchStream:
    r = api.req("GET", path, query={"watch": "true", **query})
    assert r.status == 200 and r.body is None
    assert isinstance(r.watch, WatchStream)
    assert isinstance(r.watch, StoreWatchStream)
    return r.watch


def _summary(events: list[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    out = []
    for e in events:
        meta = e["object"].get("metadata", {})
        out.append((e["type"], str(meta.get("name", "")), str(meta.get("resourceVersion", ""))))
    return out


def test_watch_from_a_list_version_sees_every_later_change_in_order(api: Api) -> None:
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("before"))
    rv = api.ok("GET", "/api/v1/namespaces/x/configmaps")["metadata"]["resourceVersion"]
    w = _watch(api, "/api/v1/namespaces/x/configmaps", resourceVersion=rv)
    a = api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("a", k="1"))
    a["data"] = {"k": "2"}
    a2 = api.ok("PUT", "/api/v1/namespaces/x/configmaps/a", a)
    d = api.req("DELETE", "/api/v1/namespaces/x/configmaps/a")
    assert d.status == 200 and d.body is not None
    events = w.poll()
    assert _summary(events) == [
        ("ADDED", "a", a["metadata"]["resourceVersion"]),
        ("MODIFIED", "a", a2["metadata"]["resourceVersion"]),
        ("DELETED", "a", d.body["metadata"]["resourceVersion"]),
    ]
    assert events[0]["object"]["kind"] == "ConfigMap"
    assert events[2]["object"]["data"] == {"k": "2"}  # a DELETED event carries the last state
    assert w.poll() == []
    assert not w.done
    w.close()
    assert w.done


def test_watch_without_version_starts_with_the_current_state(api: Api) -> None:
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("a"))
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("b"))
    w = _watch(api, "/api/v1/namespaces/x/configmaps")
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("c"))
    got = [(t, n) for t, n, _ in _summary(w.poll())]
    assert got == [("ADDED", "a"), ("ADDED", "b"), ("ADDED", "c")]


def test_watch_only_sees_its_collection(api: Api) -> None:
    api.ns("y")
    w = _watch(api, "/api/v1/namespaces/x/configmaps", resourceVersion=str(api.store.revision))
    wall = _watch(api, "/api/v1/configmaps", resourceVersion=str(api.store.revision))
    api.ok("POST", "/api/v1/namespaces/y/configmaps", cm("other"))
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("p"))
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("mine"))
    assert [n for _, n, _ in _summary(w.poll())] == ["mine"]
    assert [n for _, n, _ in _summary(wall.poll())] == ["other", "mine"]


def test_selector_transitions_become_added_and_deleted(api: Api) -> None:
    api.ok(
        "POST",
        "/api/v1/namespaces/x/configmaps",
        {"metadata": {"name": "a", "labels": {"tier": "db"}}},
    )
    w = _watch(
        api,
        "/api/v1/namespaces/x/configmaps",
        resourceVersion=str(api.store.revision),
        labelSelector="tier=web",
    )
    merge = "application/merge-patch+json"
    api.ok(
        "PATCH",
        "/api/v1/namespaces/x/configmaps/a",
        {"metadata": {"labels": {"tier": "web"}}},
        content_type=merge,
    )
    api.ok("PATCH", "/api/v1/namespaces/x/configmaps/a", {"data": {"k": "v"}}, content_type=merge)
    api.ok(
        "PATCH",
        "/api/v1/namespaces/x/configmaps/a",
        {"metadata": {"labels": {"tier": "db"}}},
        content_type=merge,
    )
    api.ok("PATCH", "/api/v1/namespaces/x/configmaps/a", {"data": {"k": "w"}}, content_type=merge)
    assert [t for t, _, _ in _summary(w.poll())] == ["ADDED", "MODIFIED", "DELETED"]


def test_field_selector_on_watch(api: Api) -> None:
    w = _watch(
        api,
        "/api/v1/namespaces/x/pods",
        resourceVersion=str(api.store.revision),
        fieldSelector="metadata.name=p2",
    )
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("p1"))
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("p2"))
    assert [n for _, n, _ in _summary(w.poll())] == ["p2"]
    one = _watch(api, "/api/v1/namespaces/x/pods/p1", resourceVersion=str(api.store.revision))
    api.ok(
        "PATCH",
        "/api/v1/namespaces/x/pods/p2",
        {"metadata": {"labels": {"z": "1"}}},
        content_type="application/merge-patch+json",
    )
    api.ok(
        "PATCH",
        "/api/v1/namespaces/x/pods/p1",
        {"metadata": {"labels": {"z": "1"}}},
        content_type="application/merge-patch+json",
    )
    assert [n for _, n, _ in _summary(one.poll())] == ["p1"]


def test_too_old_version_is_an_in_stream_410(api: Api) -> None:
    for i in range(4):
        api.ok("POST", "/api/v1/namespaces/x/configmaps", cm(f"c{i}"))
    old = str(api.store.revision - 3)
    api.store.compact(api.store.revision)
    w = _watch(api, "/api/v1/namespaces/x/configmaps", resourceVersion=old)
    events = w.poll()
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    assert events[0]["object"] == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": f"too old resource version: {old} ({api.store.compact_revision - 1})",
        "reason": "Expired",
        "code": 410,
    }
    assert w.done and w.poll() == []
    # From just before the compaction point on, the history is still there.
    ok = _watch(
        api, "/api/v1/namespaces/x/configmaps", resourceVersion=str(api.store.compact_revision - 1)
    )
    assert [(t, n) for t, n, _ in _summary(ok.poll())] == [("ADDED", "c3")]
    assert not ok.done


def test_bookmarks_report_progress(api: Api) -> None:
    start = api.store.revision
    w = _watch(
        api,
        "/api/v1/namespaces/x/configmaps",
        resourceVersion=str(start),
        allowWatchBookmarks="true",
    )
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("elsewhere"))
    assert w.poll() == []
    bm = w.bookmark()
    assert bm == {
        "type": "BOOKMARK",
        "object": {
            "kind": "ConfigMap",
            "apiVersion": "v1",
            "metadata": {"resourceVersion": str(api.store.revision)},
        },
    }
    plain = _watch(api, "/api/v1/namespaces/x/configmaps", resourceVersion=str(start))
    assert plain.bookmark() is None


def test_send_initial_events_ends_with_a_bookmark(api: Api) -> None:
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("a"))
    w = _watch(
        api,
        "/api/v1/namespaces/x/configmaps",
        sendInitialEvents="true",
        resourceVersionMatch="NotOlderThan",
        allowWatchBookmarks="true",
    )
    events = w.poll()
    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    bad = api.req(
        "GET",
        "/api/v1/namespaces/x/configmaps",
        query={"watch": "true", "sendInitialEvents": "true"},
    )
    assert bad.status == 400


def test_table_watch_has_columns_on_the_first_event_only(api: Api) -> None:
    r = api.req(
        "GET",
        "/api/v1/namespaces/x/pods",
        query={"watch": "true", "resourceVersion": str(api.store.revision)},
        accept=TABLE,
    )
    assert r.watch is not None
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("p1"))
    api.ok("POST", "/api/v1/namespaces/x/pods", pod("p2"))
    events = r.watch.poll()
    assert [e["object"]["kind"] for e in events] == ["Table", "Table"]
    assert "columnDefinitions" in events[0]["object"]
    assert "columnDefinitions" not in events[1]["object"]
    assert events[1]["object"]["rows"][0]["cells"][0] == "p2"


def test_deleted_event_survives_compaction_of_the_previous_value(api: Api) -> None:
    api.ok("POST", "/api/v1/namespaces/x/configmaps", cm("a", k="1"))
    start = api.store.revision
    w = _watch(api, "/api/v1/namespaces/x/configmaps", resourceVersion=str(start))
    api.ok("DELETE", "/api/v1/namespaces/x/configmaps/a")
    api.store.compact(api.store.revision)
    events = w.poll()
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("DELETED", "a")]


def test_bad_watch_parameters(api: Api) -> None:
    for q in (
        {"resourceVersion": "abc"},
        {"resourceVersion": "-1"},
        {"timeoutSeconds": "x"},
        {"labelSelector": "a in ("},
    ):
        r = api.req("GET", "/api/v1/namespaces/x/configmaps", query={"watch": "true", **q})
        assert r.status == 400, q
        assert r.watch is None
