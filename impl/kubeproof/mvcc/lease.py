"""Leases: etcd's lessor without its clock.

Theory of operation
-------------------
A lease is an id, a TTL in seconds, an expiry time and the set of keys
attached to it.  Time is never read here: every call that depends on it
takes ``now`` (seconds, any epoch the caller likes), so the same inputs
always give the same answers.

    grant(id, ttl, now)     ttl > MAX_LEASE_TTL -> ErrLeaseTTLTooLarge;
                            id taken -> ErrLeaseExists;
                            ttl < min_ttl is raised to min_ttl (etcd: 2 s with
                            its default election timeout); expiry = now + ttl
    renew(id, now)          unknown or already expired -> ErrLeaseNotFound
                            (etcd waits for the pending revocation, then says
                            not found); else expiry = now + ttl, returns ttl
    remaining(id, now)      whole seconds left, truncated toward zero as Go's
                            int64(d.Seconds()) does (0 or negative once expired)
    expired(now)            leases with expiry <= now, by expiry then id
    attach/detach(id, key)  done by the store when a put names a lease, when a
                            key is overwritten or deleted

Revoking (deleting the attached keys in one revision) is the store's job,
because it writes.  Expired leases are not revoked here: whoever drives
the store (the leader, in the replicated store) decides when to revoke
them, exactly as etcd's leader does; `MVCCStore.expire(now)` is the
one-call way to do it.
"""

from __future__ import annotations

from .errors import ErrLeaseExists, ErrLeaseNotFound, ErrLeaseTTLTooLarge

MAX_LEASE_TTL = 9_000_000_000
"""etcd's lease.MaxLeaseTTL (seconds)."""

DEFAULT_MIN_LEASE_TTL = 2
"""etcd 3.4's minimum TTL with its default 100 ms heartbeat and 1000 ms
election timeout: ceil(1.5 * election timeout) seconds."""


class Lease:
    """A live lease (mutable; owned by the `Lessor`)."""

    __slots__ = ("expiry", "id", "keys", "ttl")

    def __init__(self, id: int, ttl: int, expiry: float) -> None:
        self.id = id
        self.ttl = ttl
        self.expiry = expiry
        self.keys: set[bytes] = set()


class Lessor:
    __slots__ = ("_leases", "_next_id", "min_ttl")

    def __init__(self, min_ttl: int = DEFAULT_MIN_LEASE_TTL, first_id: int = 1) -> None:
        if first_id <= 0:
            raise ValueError(f"first lease id must be positive, got {first_id}")
        self.min_ttl = min_ttl
        self._leases: dict[int, Lease] = {}
        self._next_id = first_id

    def __contains__(self, id: int) -> bool:
        return id in self._leases

    def get(self, id: int) -> Lease:
        lease = self._leases.get(id)
        if lease is None:
            raise ErrLeaseNotFound(f"lease {id}")
        return lease

    def new_id(self) -> int:
        """A fresh positive id (etcd draws one from its request id generator;
        a counter is as unique and keeps the store deterministic)."""
        while self._next_id in self._leases or self._next_id == 0:
            self._next_id += 1
        id = self._next_id
        self._next_id += 1
        return id

    def grant(self, id: int, ttl: int, now: float) -> Lease:
        if id == 0:
            # etcd's lessor refuses NoLease; its server never passes it.
            raise ErrLeaseNotFound("lease id 0 is NoLease")
        if ttl > MAX_LEASE_TTL:
            raise ErrLeaseTTLTooLarge(f"ttl {ttl} > {MAX_LEASE_TTL}")
        if id in self._leases:
            raise ErrLeaseExists(f"lease {id}")
        ttl = max(ttl, self.min_ttl)
        lease = Lease(id, ttl, now + ttl)
        self._leases[id] = lease
        return lease

    def remove(self, id: int) -> Lease:
        lease = self.get(id)
        del self._leases[id]
        return lease

    def renew(self, id: int, now: float) -> int:
        lease = self.get(id)
        if lease.expiry <= now:
            raise ErrLeaseNotFound(f"lease {id} expired")
        lease.expiry = now + lease.ttl
        return lease.ttl

    def remaining(self, id: int, now: float) -> int:
        # int() truncates toward zero, as Go's int64(float64) does.
        return int(self.get(id).expiry - now)

    def expired(self, now: float) -> tuple[int, ...]:
        due = [le for le in self._leases.values() if le.expiry <= now]
        due.sort(key=lambda le: (le.expiry, le.id))
        return tuple(le.id for le in due)

    def ids(self) -> tuple[int, ...]:
        """Every lease, soonest expiry first (etcd's ``Leases()`` order), ties by id."""
        ls = sorted(self._leases.values(), key=lambda le: (le.expiry, le.id))
        return tuple(le.id for le in ls)

    def attach(self, id: int, key: bytes) -> None:
        self._leases[id].keys.add(key)

    def detach(self, id: int, key: bytes) -> None:
        lease = self._leases.get(id)
        if lease is not None:
            lease.keys.discard(key)
