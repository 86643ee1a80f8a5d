"""Real I/O for kubeproof's cores: the Kubernetes HTTP API server and the WAL on disk.

This is the adapter layer: asyncio, sockets, TLS, the wall clock and uuids
live here and nowhere else.  `app.start` (or `app.ServerThread`) runs an
API server over the pure `kubeproof.api` core; `wal` and `durable` keep the
store on disk; `protobuf`, `discovery` and `openapi` speak the parts of the
Kubernetes wire protocol the core does not need to know about.
"""

from .durable import DurabilityError, DurableStore, open_durable_store
from .wal import WALCorruptError, WriteAheadLog

__all__ = [
    "DurabilityError",
    "DurableStore",
    "WALCorruptError",
    "WriteAheadLog",
    "open_durable_store",
]
