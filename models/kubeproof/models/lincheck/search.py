"""The linearizability search: Wing & Gong with Lowe's memoization.

Theory of operation
-------------------
A history is linearizable iff its operations can be put in one sequence
that (a) respects real time (if A returned before B was called, A comes
first) and (b) is a legal run of the sequential model.  Pending operations
(unknown outcome) may appear anywhere after their call, or not at all.

The search is a depth-first walk over *configurations* ``(C, P, state)``:
C is the set (a bitset) of completed operations already linearized, P the
set of pending operations already used, `state` the model state after
them.  From a configuration the *candidates* are the operations not yet
linearized whose call is no later than the earliest return among the
completed operations not yet linearized (Wing & Gong's "minimal"
operations); a candidate is a move if the model accepts it.  Success is
C = all completed operations; the pending ones left over never happened.

Five rules keep the walk small; each is sound and keeps it complete (a
proof sketch is in docs/lincheck.md):

1. Memoization (Lowe): configurations already visited are not revisited.
   Generalized to *dominance*: a configuration with the same C and state
   as a visited one, but which has used a superset of its pending
   operations, can do nothing the visited one could not, so it is pruned.
   The cache maps (C, state) to the pending-sets seen with it.
2. Read-only moves are forced: if a candidate completed operation that
   can never change the state (a read, a failed cas: the model's
   `mutates(input, output)` is False) is legal now, taking it first loses
   nothing (it can be moved to the front of any linearization, and the
   state it sees there is the one it saw), so it is the only move tried.
   Reads never branch.  (A write of the value already there is *not*
   read-only: later in the order it might have changed the state.)
3. A pending operation is only used when it changes the state; one that
   would not can simply never have happened.
4. Pending operations with equal inputs are interchangeable (any of them
   could stand in for another called later), so they are used in call
   order: 2**k subsets of k identical timeouts become k+1 choices.
5. Dead ends are cut early: an operation illegal now must become legal
   before the operations called after its return can go, i.e. by the
   writes still available to it; the model's `may_become_legal` hint says
   when none of them can help (a get whose value no longer extends the
   current one, a read of a value nobody left will write).  The hint is
   asked about every illegal candidate, and about the reads beyond the
   candidate window at doubling distances (1st, 2nd, 4th, ... next read).

Before the walk, the model's `simplify` may rewrite the partition into an
equivalent cheaper one (drop timed-out writes nobody could have seen,
merge values nobody observes).  The walk counts the configurations it expands; past `budget`, or when the
injected `should_stop()` says so, it gives up with UNKNOWN.  No clock is
read here: the caller decides what a timeout is.
"""

from __future__ import annotations

import enum
import sys
from bisect import bisect_right
from collections.abc import Callable, Hashable, Iterator, Sequence
from typing import Any

from attrs import frozen

from kubeproof.models.sequential import ILLEGAL, AnyModel

from .history import Operation


class Verdict(enum.Enum):
    OK = "linearizable"
    ILLEGAL = "not linearizable"
    UNKNOWN = "unknown"


@frozen
class PartitionResult:
    """The outcome for one partition (one key, or the whole history)."""

    key: Hashable
    verdict: Verdict
    operations: int
    explored: int
    # OK: a linearization (ids of the completed ops and of the pending ones that took effect).
    linearization: tuple[int, ...] = ()
    # ILLEGAL: the longest linearizable prefix found, the state after it, and the
    # completed operations that could be placed next but do not fit that state.
    longest: tuple[int, ...] = ()
    state: Any = None
    stuck: tuple[int, ...] = ()


_POLL = 2048  # configurations between calls of should_stop


def check_partition(
    model: AnyModel,
    key: Hashable,
    ops: Sequence[Operation],
    *,
    budget: int | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> PartitionResult:
    """Decide whether `ops` (one partition) is linearizable under `model`."""
    mutates = model.mutates
    total = len(ops)
    ops = model.simplify(ops)
    completed = sorted((o for o in ops if not o.pending), key=lambda o: (o.call, o.ret, o.id))
    pending = sorted(
        (o for o in ops if o.pending and mutates(o.input, None)), key=lambda o: (o.call, o.id)
    )
    n = len(completed)
    if n == 0:
        return PartitionResult(key, Verdict.OK, total, 0)
    full = (1 << n) - 1
    calls = [o.call for o in completed]
    rets: list[float] = [o.ret for o in completed]  # type: ignore[misc]
    ins = [o.input for o in completed]
    outs = [o.output for o in completed]
    by_ret = sorted(range(n), key=lambda i: (rets[i], i))
    npend = len(pending)
    pcalls = [o.call for o in pending]
    pins = [o.input for o in pending]
    # Rule 4: each pending op may only be used once its identical predecessor is.
    pprev = [-1] * npend
    last: dict[Any, int] = {}
    for j, o in enumerate(pending):
        pprev[j] = last.get(o.input, -1)
        last[o.input] = j

    step = model.step
    apply = model.apply

    illegal = ILLEGAL

    # For rule 5: which ops mutate (a bitset), to list those that may precede an op.
    muts = [mutates(ins[i], outs[i]) for i in range(n)]
    mut_mask = sum(1 << i for i in range(n) if muts[i])
    may_become_legal = model.may_become_legal
    # The read-only operations in call order: the next one beyond the candidate
    # window is also asked about (rule 5 looks one observation ahead).
    ro_idx = [i for i in range(n) if not muts[i]]
    ro_calls = [calls[i] for i in ro_idx]
    n_ro = len(ro_idx)

    def writers(c: int, p: int, i: int) -> Iterator[Any]:
        # Operations not yet used that could still take effect before op i must:
        # those called no later than op i returned.
        t = rets[i]
        x = ~c & mut_mask & ((1 << bisect_right(calls, t)) - 1) & ~(1 << i)
        while x:
            low = x & -x
            yield ins[low.bit_length() - 1]
            x ^= low
        x = ~p & ((1 << bisect_right(pcalls, t)) - 1)
        while x:
            low = x & -x
            yield pins[low.bit_length() - 1]
            x ^= low

    def expand(
        c: int, p: int, state: Any, lo: int, rlo: int
    ) -> tuple[int, int, list[tuple[bool, int, Any]]]:
        while (c >> lo) & 1:
            lo += 1
        while (c >> by_ret[rlo]) & 1:
            rlo += 1
        bound = rets[by_ret[rlo]]
        children: list[tuple[bool, int, Any]] = []
        i = lo
        while i < n and calls[i] <= bound:
            if not (c >> i) & 1:
                s2 = step(state, ins[i], outs[i])
                if s2 is illegal:
                    # Rule 5: a dead end if nothing left can make op i legal in time.
                    if not may_become_legal(state, ins[i], outs[i], writers(c, p, i)):
                        return lo, rlo, []
                elif muts[i]:
                    children.append((False, i, s2))
                else:
                    # Rule 2: a legal read-only operation is taken alone.
                    return lo, rlo, [(False, i, s2)]
            i += 1
        k = bisect_right(ro_calls, bound)
        gap = 1
        while k < n_ro:
            # Never a candidate yet, so not linearized: it must become legal by
            # the writes called before it returns.  Reads further ahead are
            # probed at doubling distances, so a write consumed too early is
            # noticed at a logarithmic cost per configuration.
            i = ro_idx[k]
            if step(state, ins[i], outs[i]) is illegal and not may_become_legal(
                state, ins[i], outs[i], writers(c, p, i)
            ):
                return lo, rlo, []
            k += gap
            gap *= 2
        j = 0
        while j < npend and pcalls[j] <= bound:
            if not (p >> j) & 1:
                prev = pprev[j]
                if prev < 0 or (p >> prev) & 1:
                    s2 = apply(state, pins[j])
                    if s2 != state:  # rule 3
                        children.append((True, j, s2))
            j += 1
        return lo, rlo, children

    init = model.init()
    cache: dict[tuple[int, Any], list[int]] = {(0, init): [0]}
    lo0, rlo0, ch0 = expand(0, 0, init, 0, 0)
    # A frame: [C, P, state, lo, rlo, children, next child, move that led here, depth]
    stack: list[list[Any]] = [[0, 0, init, lo0, rlo0, ch0, 0, None, 0]]
    explored = 1
    best_depth = 0
    best_path: list[tuple[bool, int]] = []
    best_state = init
    best_frame = stack[0]
    limit = budget if budget is not None else sys.maxsize
    poll = _POLL

    def ids(moves: Sequence[tuple[bool, int] | None]) -> tuple[int, ...]:
        return tuple(
            (pending[m[1]] if m[0] else completed[m[1]]).id for m in moves if m is not None
        )

    while stack:
        fr = stack[-1]
        k = fr[6]
        ch = fr[5]
        if k >= len(ch):
            stack.pop()
            continue
        fr[6] = k + 1
        is_p, idx, s2 = ch[k]
        depth = fr[8]
        if is_p:
            c2 = fr[0]
            p2 = fr[1] | (1 << idx)
        else:
            c2 = fr[0] | (1 << idx)
            p2 = fr[1]
            depth += 1
            if c2 == full:
                moves = [f[7] for f in stack] + [(is_p, idx)]
                return PartitionResult(key, Verdict.OK, total, explored, ids(moves))
        ck = (c2, s2)
        seen = cache.get(ck)
        if seen is None:
            cache[ck] = [p2]
        else:
            dominated = False
            for q in seen:
                if not q & ~p2:
                    dominated = True
                    break
            if dominated:
                continue
            seen.append(p2)
        explored += 1
        if explored >= limit:
            return PartitionResult(key, Verdict.UNKNOWN, total, explored)
        if should_stop is not None:
            poll -= 1
            if poll == 0:
                poll = _POLL
                if should_stop():
                    return PartitionResult(key, Verdict.UNKNOWN, total, explored)
        lo, rlo, ch2 = expand(c2, p2, s2, fr[3], fr[4])
        frame = [c2, p2, s2, lo, rlo, ch2, 0, (is_p, idx), depth]
        stack.append(frame)
        if depth > best_depth:
            best_depth = depth
            best_path = [f[7] for f in stack[1:]]
            best_state = s2
            best_frame = frame

    # Not linearizable: report the deepest configuration reached, and the
    # operations that could have come next there but do not fit its state.
    c, lo, rlo = best_frame[0], best_frame[3], best_frame[4]
    bound = rets[by_ret[rlo]]
    stuck = tuple(
        completed[i].id
        for i in range(lo, n)
        if calls[i] <= bound and not (c >> i) & 1 and step(best_state, ins[i], outs[i]) is illegal
    )
    return PartitionResult(
        key,
        Verdict.ILLEGAL,
        total,
        explored,
        longest=ids(best_path),
        state=best_state,
        stuck=stuck,
    )
