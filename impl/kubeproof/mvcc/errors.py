"""Errors of the MVCC store, named and worded as etcd 3.4 names and words them.

Theory of operation
-------------------
etcd has two layers of error values for the same condition: the storage
layer's own (``mvcc.ErrCompacted`` = "mvcc: required revision has been
compacted", ``lease.ErrLeaseNotFound`` = "lease not found") and the gRPC
status the server turns it into (``rpctypes.ErrGRPCCompacted``: code
OutOfRange, "etcdserver: mvcc: required revision has been compacted").
Clients only ever see the second.  Each exception class here carries both,
so that the store can be compared with etcd's JSON gateway and a gRPC
adapter can answer with the exact status:

    name            etcd's Go identifier (``ErrCompacted``)
    message         the storage-layer text (what ``str(exc)`` gives)
    grpc_code       the gRPC status code number a client sees
    grpc_message    the gRPC status message a client sees

Conditions that etcd checks in its gRPC layer before a request reaches the
store (empty key, too many txn ops, duplicate keys in a txn, ...) have only
the gRPC form; their ``message`` equals ``grpc_message``.

Every error is raised before the store changes: a request either applies
whole or fails with nothing applied, as etcd's apply loop guarantees.
"""

from __future__ import annotations

from typing import ClassVar

# gRPC status codes (google.golang.org/grpc/codes) used by these errors.
CODE_INVALID_ARGUMENT = 3
CODE_NOT_FOUND = 5
CODE_FAILED_PRECONDITION = 9
CODE_OUT_OF_RANGE = 11


class MVCCError(Exception):
    """Base of every error the store raises on a request."""

    name: ClassVar[str] = "MVCCError"
    message: ClassVar[str] = "mvcc: error"
    grpc_code: ClassVar[int] = 2  # Unknown
    grpc_message: ClassVar[str] = "etcdserver: mvcc: error"

    def __init__(self, detail: str = "") -> None:
        # The detail (what exactly was wrong) is for humans; the class, name
        # and messages are the etcd-compatible identity of the error.
        self.detail = detail
        super().__init__(self.message + (f" ({detail})" if detail else ""))


class ErrCompacted(MVCCError):
    name = "ErrCompacted"
    message = "mvcc: required revision has been compacted"
    grpc_code = CODE_OUT_OF_RANGE
    grpc_message = "etcdserver: mvcc: required revision has been compacted"


class ErrFutureRev(MVCCError):
    name = "ErrFutureRev"
    message = "mvcc: required revision is a future revision"
    grpc_code = CODE_OUT_OF_RANGE
    grpc_message = "etcdserver: mvcc: required revision is a future revision"


class ErrEmptyKey(MVCCError):
    name = "ErrEmptyKey"
    message = "etcdserver: key is not provided"
    grpc_code = CODE_INVALID_ARGUMENT
    grpc_message = "etcdserver: key is not provided"


class ErrKeyNotFound(MVCCError):
    """A put with ignore_value or ignore_lease on a key that does not exist."""

    name = "ErrKeyNotFound"
    message = "etcdserver: key not found"
    grpc_code = CODE_INVALID_ARGUMENT
    grpc_message = "etcdserver: key not found"


class ErrValueProvided(MVCCError):
    name = "ErrValueProvided"
    message = "etcdserver: value is provided"
    grpc_code = CODE_INVALID_ARGUMENT
    grpc_message = "etcdserver: value is provided"


class ErrLeaseProvided(MVCCError):
    name = "ErrLeaseProvided"
    message = "etcdserver: lease is provided"
    grpc_code = CODE_INVALID_ARGUMENT
    grpc_message = "etcdserver: lease is provided"


class ErrTooManyOps(MVCCError):
    name = "ErrTooManyOps"
    message = "etcdserver: too many operations in txn request"
    grpc_code = CODE_INVALID_ARGUMENT
    grpc_message = "etcdserver: too many operations in txn request"


class ErrDuplicateKey(MVCCError):
    name = "ErrDuplicateKey"
    message = "etcdserver: duplicate key given in txn request"
    grpc_code = CODE_INVALID_ARGUMENT
    grpc_message = "etcdserver: duplicate key given in txn request"


class ErrLeaseNotFound(MVCCError):
    name = "ErrLeaseNotFound"
    message = "lease not found"
    grpc_code = CODE_NOT_FOUND
    grpc_message = "etcdserver: requested lease not found"


class ErrLeaseExists(MVCCError):
    name = "ErrLeaseExists"
    message = "lease already exists"
    grpc_code = CODE_FAILED_PRECONDITION
    grpc_message = "etcdserver: lease already exists"


class ErrLeaseTTLTooLarge(MVCCError):
    name = "ErrLeaseTTLTooLarge"
    message = "too large lease TTL"
    grpc_code = CODE_OUT_OF_RANGE
    grpc_message = "etcdserver: too large lease TTL"


class ErrEmptyWatcherRange(MVCCError):
    """A watch whose range_end is not after its key (etcd answers the create
    request with created=true, canceled=true and this cancel reason)."""

    name = "ErrEmptyWatcherRange"
    message = "mvcc: watcher range is empty"
    grpc_code = CODE_INVALID_ARGUMENT
    grpc_message = "mvcc: watcher range is empty"


class ErrWatcherDuplicateID(MVCCError):
    name = "ErrWatcherDuplicateID"
    message = "mvcc: duplicate watch ID provided on the WatchStream"
    grpc_code = CODE_INVALID_ARGUMENT
    grpc_message = "mvcc: duplicate watch ID provided on the WatchStream"


class ErrWatcherNotExist(MVCCError):
    name = "ErrWatcherNotExist"
    message = "mvcc: watcher does not exist"
    grpc_code = CODE_NOT_FOUND
    grpc_message = "mvcc: watcher does not exist"


ALL_ERRORS: tuple[type[MVCCError], ...] = (
    ErrCompacted,
    ErrFutureRev,
    ErrEmptyKey,
    ErrKeyNotFound,
    ErrValueProvided,
    ErrLeaseProvided,
    ErrTooManyOps,
    ErrDuplicateKey,
    ErrLeaseNotFound,
    ErrLeaseExists,
    ErrLeaseTTLTooLarge,
    ErrEmptyWatcherRange,
    ErrWatcherDuplicateID,
    ErrWatcherNotExist,
)
"""Every concrete error, e.g. for mapping a gRPC status message back to a class."""
