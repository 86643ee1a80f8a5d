"""kubeproof.api: the Kubernetes API server core, pure and deterministic.

`ApiServer.handle(ApiRequest) -> ApiResponse` serves the REST verbs of the
resources in `RESOURCES` over a `Store` (the MVCC store, or the replicated
one), with authentication (`Authenticator`), RBAC authorization, admission,
validation, defaulting, watches (`WatchStream`) and Table output.  The HTTP
layer (`kubeproof.serve`) does only I/O around it.  See `server` for the
request pipeline, `reads`/`deletion`/`subresources`/`reviews` for the
verbs, `storage` for the etcd layout, `rbac` for the authorization rules,
`admission`, `validation`, `defaults`, `patch`, `table`, and docs/api.md
for what is supported and how it differs from kube-apiserver.
"""

from .admission import (
    DEFAULT_CHAIN,
    AdmissionAttributes,
    AdmissionPlugin,
    NamespaceLifecycle,
    ObjectSizeLimit,
    PodDefaults,
)
from .authn import ANONYMOUS_USER, Authenticator, CredentialFileError, Unauthorized
from .body import MAX_REQUEST_BYTES
from .errors import ApiError, Cause
from .rbac import (
    AlwaysAllow,
    Attributes,
    Authorizer,
    Decision,
    RBACAuthorizer,
    RbacState,
    Rule,
)
from .resources import RESOURCES, ResourceInfo, SubresourceInfo, by_kind, group_versions, lookup
from .server import ApiServer
from .storage import ObjectStore, Store, collection_prefix, object_key
from .table import negotiate, to_table
from .types import ApiRequest, ApiResponse, UserInfo, WatchStream
from .watch import StoreWatchStream

__all__ = [
    "ANONYMOUS_USER",
    "DEFAULT_CHAIN",
    "MAX_REQUEST_BYTES",
    "RESOURCES",
    "AdmissionAttributes",
    "AdmissionPlugin",
    "AlwaysAllow",
    "ApiError",
    "ApiRequest",
    "ApiResponse",
    "ApiServer",
    "Attributes",
    "Authenticator",
    "Authorizer",
    "Cause",
    "CredentialFileError",
    "Decision",
    "NamespaceLifecycle",
    "ObjectSizeLimit",
    "ObjectStore",
    "PodDefaults",
    "RBACAuthorizer",
    "RbacState",
    "ResourceInfo",
    "Rule",
    "Store",
    "StoreWatchStream",
    "SubresourceInfo",
    "Unauthorized",
    "UserInfo",
    "WatchStream",
    "by_kind",
    "collection_prefix",
    "group_versions",
    "lookup",
    "negotiate",
    "object_key",
    "to_table",
]
