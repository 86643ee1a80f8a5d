"""The leader's view of each follower: etcd's tracker.Progress.

Theory of operation
-------------------
For every peer the leader tracks `match` (highest index known replicated)
and `next` (next index to send), and a state:

| state     | sends                                  | on MsgAppResp success          | on reject                     |
|-----------|----------------------------------------|--------------------------------|-------------------------------|
| Probe     | one MsgApp, then pauses until a reply  | -> Replicate                   | next = min(rejected, hint+1)  |
|           | or a heartbeat response                |                                |                               |
| Replicate | optimistically, up to max_inflight     | frees inflights up to index    | -> Probe, next = match + 1    |
| Snapshot  | nothing; waits for the snapshot report | -> Probe when match >= pending | (ignored)                     |

`recent_active` is set by any message from the peer and cleared by the
leader's CheckQuorum round.  A stale reply (index <= match, or a reject for
an index other than next - 1 in Replicate) changes nothing.
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    Probe = "StateProbe"
    Replicate = "StateReplicate"
    Snapshot = "StateSnapshot"


class Progress:
    __slots__ = (
        "inflights",
        "is_learner",
        "match",
        "max_inflight",
        "msg_app_flow_paused",
        "next",
        "pending_snapshot",
        "recent_active",
        "state",
    )

    def __init__(self, next_: int, max_inflight: int, is_learner: bool = False) -> None:
        self.match = 0
        self.next = next_
        self.state = ProgressState.Probe
        self.pending_snapshot = 0
        self.recent_active = False
        self.msg_app_flow_paused = False
        self.is_learner = is_learner
        self.max_inflight = max_inflight
        self.inflights: deque[int] = deque()

    def _reset(self, state: ProgressState) -> None:
        self.msg_app_flow_paused = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.clear()

    def become_probe(self) -> None:
        if self.state is ProgressState.Snapshot:
            pending = self.pending_snapshot
            self._reset(ProgressState.Probe)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset(ProgressState.Probe)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset(ProgressState.Replicate)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset(ProgressState.Snapshot)
        self.pending_snapshot = snapshot_index

    def maybe_update(self, n: int) -> bool:
        """A successful ack of index n; True if it told us something new."""
        updated = False
        if self.match < n:
            self.match = n
            updated = True
            self.msg_app_flow_paused = False
        self.next = max(self.next, n + 1)
        return updated

    def update_on_entries_send(self, n_entries: int, last_index: int) -> None:
        if self.state is ProgressState.Replicate:
            if n_entries:
                self.next = last_index + 1
                self.inflights.append(last_index)
            self.msg_app_flow_paused = len(self.inflights) >= self.max_inflight
        elif self.state is ProgressState.Probe:
            self.msg_app_flow_paused = True

    def free_le(self, index: int) -> None:
        while self.inflights and self.inflights[0] <= index:
            self.inflights.popleft()
        if self.state is ProgressState.Replicate:
            self.msg_app_flow_paused = len(self.inflights) >= self.max_inflight

    def maybe_decr_to(self, rejected: int, match_hint: int) -> bool:
        """A rejection of index `rejected`; False if stale."""
        if self.state is ProgressState.Replicate:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.msg_app_flow_paused = False
        return True

    def is_paused(self) -> bool:
        if self.state is ProgressState.Probe:
            return self.msg_app_flow_paused
        if self.state is ProgressState.Replicate:
            return self.msg_app_flow_paused
        return True
