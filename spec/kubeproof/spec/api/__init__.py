"""kubeproof.spec.api: the API server's invariants and an independent RBAC model.

`api_checkers()` gives fresh checkers for one simulated run (see
`checkers` for the four invariants); `rbac_model` decides authorization
and escalation from the Kubernetes documentation, apart from the
implementation's authorizer, for API-AUTHORIZED and the property tests.
"""

from .checkers import (
    Authorized,
    ChangeLog,
    NoLostUpdate,
    RvMonotonic,
    WatchComplete,
    api_checkers,
    collection_prefix,
    object_key,
    snapshot,
)
from .ids import (
    API_AUTHORIZED,
    API_INVARIANTS,
    API_NO_LOST_UPDATE,
    API_RV_MONOTONIC,
    API_WATCH_COMPLETE,
)
from .rbac_model import RbacSnapshot, Req, allowed, may_write_rbac, request_of

__all__ = [
    "API_AUTHORIZED",
    "API_INVARIANTS",
    "API_NO_LOST_UPDATE",
    "API_RV_MONOTONIC",
    "API_WATCH_COMPLETE",
    "Authorized",
    "ChangeLog",
    "NoLostUpdate",
    "RbacSnapshot",
    "Req",
    "RvMonotonic",
    "WatchComplete",
    "allowed",
    "api_checkers",
    "collection_prefix",
    "may_write_rbac",
    "object_key",
    "request_of",
    "snapshot",
]
