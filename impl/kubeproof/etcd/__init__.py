"""kubeproof.etcd: the replicated store, Raft + MVCC + client sessions, as a sans-IO core.

A `Member` is one etcd server without its I/O: a `kubeproof.raft.RaftNode`
whose state machine is a `kubeproof.mvcc.MVCCStore` (plus client sessions
and lease versions, see `state_machine`).  Writes go through the Raft log
and apply once however often they are retried; linearizable reads go
through ReadIndex; serializable reads and watches are served from the
member's applied state; leases expire when the leader says so, through the
log.  docs/etcd.md describes the design.

How an I/O adapter drives a member (a gRPC server, the simulation harness)::

    from kubeproof.etcd import ClientRequest, Member, MemberConfig
    from kubeproof.mvcc import PutRequest, RangeRequest
    from kubeproof.raft import MemoryStorage, RaftConfig

    m = Member(MemberConfig(raft=RaftConfig(id=1, voters=(1, 2, 3))), MemoryStorage(), rng)

    # every tick period (etcd: 100 ms), with the adapter's clock in seconds
    out = m.tick(now)
    # a peer's Raft message arrived
    m.step(msg)
    # a client request arrived: (client_id, seq) name it; a retry reuses them;
    # ack = the lowest seq the client still waits for (default: seq)
    out = m.submit(ClientRequest(PutRequest(key=b"k", value=b"v"), client_id=7, seq=1), now)
    # a watch: id >= 1; its responses come in Output.watch_responses
    wid = m.watch(b"k", b"", start_revision=0)

    # after any input, while the node has something to do:
    while m.has_ready():
        rd = m.ready()
        m.persist(rd)              # into the MemoryStorage; a durable adapter also writes
                                   # rd.snapshot/rd.entries/rd.hard_state to its WAL and
                                   # fsyncs when rd.must_sync, BEFORE sending
        send(rd.messages)          # each Message has .to
        out = m.advance(rd, now)   # apply, serve reads, poll watches, maybe snapshot

    # every Output: deliver out.responses (ClientResponse: client_id, seq, result with
    # .response = the etcd response value or .error = Error(code, message, grpc_code)),
    # and out.watch_responses (kubeproof.mvcc.WatchResponse, by watch_id)

A crash is dropping the `Member`; a restart is `Member(cfg, same_storage, rng)`.
An adapter that answers many concurrent requests over one ``client_id`` must
give each its own ``seq`` and send ``ack`` = its lowest outstanding seq.
"""

from .leases import LeaseClock
from .member import CONF_CHANGE, EMPTY, Member, MemberConfig, NodeFactory, Output, err_timeout
from .proposal import (
    LeaseExpire,
    Proposal,
    ProposalError,
    decode_proposal,
    encode_proposal,
    encode_proposal_json,
)
from .sessions import Decision, SessionTable
from .state_machine import EXPIRE, INVALID, NOOP, WRITE, Applied, KVStateMachine, StateImage
from .types import (
    READ_TYPES,
    WRITE_TYPES,
    ClientRequest,
    ClientResponse,
    Error,
    KVRequest,
    KVResponse,
    ReadRequest,
    Result,
    WriteRequest,
    err_no_leader,
    err_stale_request,
    err_stopped,
)
from .watches import WatchHub

__all__ = [
    "CONF_CHANGE",
    "EMPTY",
    "EXPIRE",
    "INVALID",
    "NOOP",
    "READ_TYPES",
    "WRITE",
    "WRITE_TYPES",
    "Applied",
    "ClientRequest",
    "ClientResponse",
    "Decision",
    "Error",
    "KVRequest",
    "KVResponse",
    "KVStateMachine",
    "LeaseClock",
    "LeaseExpire",
    "Member",
    "MemberConfig",
    "NodeFactory",
    "Output",
    "Proposal",
    "ProposalError",
    "ReadRequest",
    "Result",
    "SessionTable",
    "StateImage",
    "WatchHub",
    "WriteRequest",
    "decode_proposal",
    "encode_proposal",
    "encode_proposal_json",
    "err_no_leader",
    "err_stale_request",
    "err_stopped",
    "err_timeout",
]
