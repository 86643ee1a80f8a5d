"""Reads: get, list (pages, selectors, resourceVersion semantics) and watch.

Theory of operation
-------------------
get    ""/"0" or N <= current: the latest; N > current: 504 Timeout
list   ""/"0": the latest revision; N: not older than N (504 if in the
       future), but exactly N when a limit is given or
       resourceVersionMatch=Exact (410 once compacted); a continue token
       reads at its first page's revision (410 once compacted); RV and
       continue together: 400.  Pages are filled past objects the selectors
       drop, as kube does; remainingItemCount only without selectors.
watch  ""/"0": synthetic ADDED events for the state at the latest revision
       R, then every change after R; N: every change after N
       (`ApiServer.watch_start_revision`), or one 410 Expired ERROR event if
       the store compacted past N.  A named watch is a watch of the
       collection with a metadata.name field selector.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kubeproof.mvcc import (
    ErrCompacted,
    ErrFutureRev,
)

from . import table as tables
from .common import (
    CONTINUE_EXPIRED,
    JSON_HEADERS,
    decode_continue,
    encode_continue,
    parse_rv,
)
from .errors import (
    ApiError,
    bad_request,
    expired,
    not_found,
    timeout,
)
from .paths import Target
from .selectors import (
    FieldSelector,
    LabelSelector,
    SelectorError,
    field_set,
    matcher,
    parse_field_selector,
    parse_label_selector,
)
from .storage import collection_prefix, decode, prefix_end
from .types import ApiRequest, ApiResponse
from .watch import StoreWatchStream

if TYPE_CHECKING:
    from .server import ApiServer

Obj = dict[str, Any]


def handle_get(api: ApiServer, t: Target, req: ApiRequest) -> ApiResponse:
    api.check_accept(req)
    check_rv_not_future(api, req.param("resourceVersion"))
    got = api.objects.get(t.info, t.namespace, t.name)
    if got is None:
        raise not_found(t.info.qualified, t.name)
    obj = api.typed(t.info, got[0])
    code, body = api.render(t, req, obj)
    return ApiResponse(code, body, JSON_HEADERS)


def check_rv_not_future(api: ApiServer, rv: str | None) -> int:
    if rv in (None, "", "0"):
        return 0
    n = parse_rv(rv)
    cur = api.objects.revision
    if n > cur:
        e = timeout(f"Too large resource version: {n}, current: {cur}")
        raise ApiError(
            e.code,
            e.reason,
            e.message,
            causes=(),
            retry_after=1,
        )
    return n


def selectors(api: ApiServer, t: Target, req: ApiRequest) -> tuple[LabelSelector, FieldSelector]:
    try:
        labels = parse_label_selector(req.param("labelSelector", "") or "")
        fields = parse_field_selector(
            req.param("fieldSelector", "") or "", field_set(t.info.plural)
        )
    except SelectorError as e:
        raise bad_request(str(e)) from None
    return labels, fields


def list_objects(api: ApiServer, t: Target, req: ApiRequest) -> tuple[list[Obj], dict[str, Any]]:
    """The items and list metadata of a list request (public for the HTTP layer)."""
    labels, fields = selectors(api, t, req)
    match = matcher(t.info.plural, labels, fields)
    filtering = not (labels.empty and fields.empty)
    limit_s = req.param("limit")
    try:
        limit = int(limit_s) if limit_s not in (None, "") else 0
    except ValueError:
        raise bad_request(f'limit: Invalid value: "{limit_s}": must be an integer') from None
    limit = max(limit, 0)
    cont = req.param("continue") or ""
    rv = req.param("resourceVersion")
    rvm = req.param("resourceVersionMatch") or ""
    if rvm not in ("", "Exact", "NotOlderThan"):
        raise bad_request(
            f'resourceVersionMatch: Unsupported value: "{rvm}": supported values: '
            '"Exact", "NotOlderThan"'
        )
    prefix = collection_prefix(t.info, t.namespace)
    end = prefix_end(prefix)
    start = prefix
    read_rev = 0
    exact = False
    if cont:
        if rv not in (None, "", "0"):
            raise bad_request("specifying resource version is not allowed when using continue")
        if rvm:
            raise bad_request("resourceVersionMatch is forbidden when continue is provided")
        read_rev, start_suffix = decode_continue(cont)
        start = prefix + start_suffix.encode()
        if not start.startswith(prefix):
            raise bad_request("continue key is not valid: key does not share the prefix")
        exact = True
        expired_msg = CONTINUE_EXPIRED
    else:
        expired_msg = "The resourceVersion for the provided list is too old."
        if rvm:
            if rv in (None, ""):
                raise bad_request(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided"
                )
            if rvm == "Exact" and rv == "0":
                raise bad_request(
                    'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'
                )
        if rv not in (None, "", "0"):
            n = parse_rv(rv)
            if rvm == "Exact" or (not rvm and limit > 0):
                read_rev, exact = n, True
            else:
                check_rv_not_future(api, rv)
    items: list[Obj] = []
    next_key: bytes | None = None
    remaining: int | None = None
    header_rev = 0
    while True:
        want = (limit - len(items)) if limit else 0
        try:
            resp = api.objects.range(start, end, revision=read_rev, limit=want)
        except ErrCompacted:
            raise expired(expired_msg) from None
        except ErrFutureRev:
            cur = api.objects.revision
            raise timeout(f"Too large resource version: {read_rev}, current: {cur}") from None
        header_rev = header_rev or resp.header.revision
        if read_rev == 0:
            # Later pages of this request read at the first page's revision.
            read_rev = resp.header.revision
        for kv in resp.kvs:
            obj = decode(kv)
            if not filtering or match(obj):
                items.append(obj)
        if not resp.more:
            next_key = None
            break
        last = resp.kvs[-1].key
        start = last + b"\x00"
        if limit and len(items) >= limit:
            next_key = start
            if not filtering:
                remaining = resp.count - len(resp.kvs)
            break
    meta: dict[str, Any] = {"resourceVersion": str(read_rev if exact else header_rev)}
    if cont or exact:
        meta["resourceVersion"] = str(read_rev)
    if next_key is not None:
        meta["continue"] = encode_continue(read_rev, next_key[len(prefix) :].decode())
        if remaining is not None:
            meta["remainingItemCount"] = remaining
    return items, meta


def handle_list(api: ApiServer, t: Target, req: ApiRequest) -> ApiResponse:
    fmt = api.check_accept(req)
    items, meta = list_objects(api, t, req)
    if fmt == "table":
        include = req.param("includeObject", "Metadata") or "Metadata"
        body = tables.to_table(
            t.info.plural,
            [api.typed(t.info, o) for o in items],
            api.now(),
            list_meta=meta,
            include=include,
        )
        return ApiResponse(200, body, JSON_HEADERS)
    # The items were decoded for this request alone: drop their type in
    # place (what strip_type does on a copy).
    for o in items:
        o.pop("apiVersion", None)
        o.pop("kind", None)
    body = {
        "kind": t.info.list_kind,
        "apiVersion": t.info.api_version,
        "metadata": meta,
        "items": items,
    }
    return ApiResponse(200, body, JSON_HEADERS)


def handle_watch(api: ApiServer, t: Target, req: ApiRequest) -> ApiResponse:
    fmt = api.check_accept(req)
    labels, fields = selectors(api, t, req)
    if t.name:
        fields = FieldSelector(
            (
                *fields.requirements,
                *parse_field_selector(
                    f"metadata.name={t.name}", field_set(t.info.plural)
                ).requirements,
            )
        )
    match = matcher(t.info.plural, labels, fields)
    rv = req.param("resourceVersion")
    bookmarks = req.param("allowWatchBookmarks") in ("true", "1")
    send_initial = req.param("sendInitialEvents")
    ts = req.param("timeoutSeconds")
    timeout_seconds: int | None = None
    if ts not in (None, ""):
        try:
            timeout_seconds = int(ts)
        except ValueError:
            raise bad_request(
                f'timeoutSeconds: Invalid value: "{ts}": must be an integer'
            ) from None
    include = req.param("includeObject", "Metadata") or "Metadata"
    info = t.info
    now = api.now

    def render(obj: Obj, first: bool) -> Mapping[str, Any]:
        typed = api.typed(info, obj)
        if fmt == "table":
            return tables.to_table(
                info.plural,
                [typed],
                now(),
                list_meta={"resourceVersion": typed["metadata"].get("resourceVersion", "")},
                include=include,
                with_columns=first,
            )
        return typed

    prefix = collection_prefix(info, t.namespace)
    initial: list[Obj] = []
    initial_end = False
    if send_initial == "true":
        if req.param("resourceVersionMatch") != "NotOlderThan" or not bookmarks:
            raise bad_request(
                "sendInitialEvents=true requires resourceVersionMatch=NotOlderThan and "
                "allowWatchBookmarks=true"
            )
        initial_end = True
    known: dict[bytes, Obj] = {}
    if rv in (None, "", "0") or send_initial == "true":
        resp = api.objects.range(prefix, prefix_end(prefix))
        start_rev = resp.header.revision + 1
        known = {kv.key: decode(kv) for kv in resp.kvs}
        if send_initial != "false":
            initial = [o for o in known.values() if match(o)]
    else:
        start_rev = api.watch_start_revision(parse_rv(rv))
    watcher = api.store.watch(prefix, prefix_end(prefix), start_revision=start_rev, prev_kv=True)
    stream = StoreWatchStream(
        watcher,
        kind=info.kind,
        api_version=info.api_version,
        matches=match,
        render=render,
        initial=initial,
        start_revision=start_rev,
        bookmarks=bookmarks,
        revision=lambda: api.store.revision,
        timeout_seconds=timeout_seconds,
        initial_events_end=initial_end,
        namespaced=info.namespaced,
        known=known,
    )
    return ApiResponse(200, None, JSON_HEADERS, watch=stream)
