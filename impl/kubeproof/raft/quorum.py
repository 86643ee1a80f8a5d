"""Quorums: majority and joint configurations, after etcd's quorum package.

Theory of operation
-------------------
A configuration is a set of voter ids.  A majority configuration commits
the largest index that more than half of its voters have acknowledged:
sort the acknowledged indexes descending and take the one at position
n // 2 (0-based), i.e. the (n//2 + 1)-th largest.  A joint configuration
(C_new, C_old) during a membership change needs a majority of each, so
its committed index is the minimum of the two, and a vote is won only if
won in both.  An empty majority config commits everything and wins every
vote (so that a joint config whose outgoing half is empty behaves as the
incoming half alone), exactly as etcd's.

`kubeproof.proofs` proves with Z3 that this order statistic equals "the
largest index a majority has" for every size up to 9.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Collection, Mapping

from attrs import frozen

MAX_INDEX = 2**63 - 1


class VoteResult(enum.Enum):
    VotePending = "VotePending"
    VoteLost = "VoteLost"
    VoteWon = "VoteWon"


def majority_committed_index(voters: Collection[int], acked: Callable[[int], int | None]) -> int:
    """The largest index acknowledged by a majority of `voters`."""
    n = len(voters)
    if n == 0:
        return MAX_INDEX
    srt = sorted((acked(v) or 0 for v in voters), reverse=True)
    return srt[n // 2]


def majority_vote_result(voters: Collection[int], votes: Mapping[int, bool]) -> VoteResult:
    if not voters:
        return VoteResult.VoteWon
    yes = no = 0
    for v in voters:
        got = votes.get(v)
        if got is True:
            yes += 1
        elif got is False:
            no += 1
    q = len(voters) // 2 + 1
    if yes >= q:
        return VoteResult.VoteWon
    if yes + (len(voters) - yes - no) >= q:
        return VoteResult.VotePending
    return VoteResult.VoteLost


@frozen
class JointConfig:
    """(incoming, outgoing); outgoing is empty outside a joint configuration."""

    incoming: frozenset[int] = frozenset()
    outgoing: frozenset[int] = frozenset()

    def ids(self) -> frozenset[int]:
        return self.incoming | self.outgoing

    def is_joint(self) -> bool:
        return bool(self.outgoing)

    def committed_index(self, acked: Callable[[int], int | None]) -> int:
        return min(
            majority_committed_index(self.incoming, acked),
            majority_committed_index(self.outgoing, acked),
        )

    def vote_result(self, votes: Mapping[int, bool]) -> VoteResult:
        r1 = majority_vote_result(self.incoming, votes)
        r2 = majority_vote_result(self.outgoing, votes)
        if r1 is r2:
            return r1
        if VoteResult.VoteLost in (r1, r2):
            return VoteResult.VoteLost
        return VoteResult.VotePending
