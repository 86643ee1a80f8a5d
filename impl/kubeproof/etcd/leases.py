"""Lease time: the leader's clock decides expiry; the log carries the decision.

Theory of operation
-------------------
What a lease *is* (its id, TTL, attached keys) is replicated state, in the
MVCC store.  When it *runs out* is not: clocks differ between machines, so
etcd lets one clock decide, the leader's (its "primary lessor").  Here:

* every member keeps a `LeaseClock`: a deadline per lease in its own clock,
  ``now + TTL`` from the moment it applied the lease's grant or latest
  keep-alive;
* a member that becomes leader first *promotes* its clock: every deadline
  becomes ``now + TTL`` (etcd's ``Promote``), because keep-alives sent while
  there was no leader could not be applied, and a lease must not expire
  for want of a leader;
* the leader, at each `tick(now)`, proposes a `proposal.LeaseExpire` for
  every lease whose deadline has passed (again after ``retry`` seconds if
  it has not been applied by then);
* every member revokes the lease when it *applies* that entry, and only if
  the lease's version (the log index of its last grant or keep-alive) is
  still the one the leader saw: a keep-alive ordered before the expiry
  wins.

So no member ever deletes a key because of its own clock: expiry is a log
entry like any other, and all replicas delete the same keys at the same
revision.  Deadlines are plain floats (seconds, any epoch the driver
likes); nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Iterable


class LeaseClock:
    __slots__ = ("_deadline", "_proposed")

    def __init__(self) -> None:
        self._deadline: dict[int, float] = {}
        self._proposed: dict[int, float] = {}

    def deadline(self, lease_id: int) -> float | None:
        return self._deadline.get(lease_id)

    def renew(self, lease_id: int, ttl: int, now: float) -> None:
        """A grant or keep-alive of the lease was applied at ``now``."""
        self._deadline[lease_id] = now + ttl
        self._proposed.pop(lease_id, None)

    def forget(self, lease_id: int) -> None:
        """The lease was revoked (by a client or by an applied expiry)."""
        self._deadline.pop(lease_id, None)
        self._proposed.pop(lease_id, None)

    def promote(self, now: float, leases: Iterable[tuple[int, int]]) -> None:
        """This member became leader: every lease (id, TTL) lives at least TTL from now."""
        self._deadline = {lease_id: now + ttl for lease_id, ttl in leases}
        self._proposed = {}

    def demote(self) -> None:
        """No longer leader: expiries in flight are someone else's business now."""
        self._proposed = {}

    def due(self, now: float, retry: float) -> list[int]:
        """Leases past their deadline, not proposed for expiry within ``retry`` seconds;
        they are marked as proposed at ``now``."""
        out: list[int] = []
        for lease_id, dl in self._deadline.items():
            if dl > now:
                continue
            last = self._proposed.get(lease_id)
            if last is not None and now - last < retry:
                continue
            out.append(lease_id)
        out.sort()
        for lease_id in out:
            self._proposed[lease_id] = now
        return out
