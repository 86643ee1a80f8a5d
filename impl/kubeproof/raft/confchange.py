"""Membership changes: etcd's confchange package over ConfState values.

Theory of operation
-------------------
A `ConfChangeV2` is applied to the configuration in force and yields the
next one.  Three shapes, as in etcd:

| change                                   | result                                        |
|------------------------------------------|-----------------------------------------------|
| empty, Auto transition                   | leave the joint config: outgoing dropped,     |
|                                          | learners_next become learners                 |
| Auto with at most one voter changed      | simple: applied to `voters` directly          |
| otherwise (or JointImplicit/Explicit)    | joint: outgoing := voters, then the changes   |
|                                          | apply to the incoming half; auto_leave set    |
|                                          | unless JointExplicit                          |

Per change: AddNode makes a voter (no longer a learner); AddLearnerNode
makes a learner, but a voter of the outgoing half becomes a learner only
when the joint config is left (`learners_next`); RemoveNode removes from
the incoming half and the learner sets.  Invalid changes raise
`ConfChangeError` naming the problem (etcd returns errors there too).

The entry encoding is our own JSON (etcd uses protobuf); `decode(encode(cc))
== cc` is tested.
"""

from __future__ import annotations

import base64
import json

from .types import (
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
    Entry,
    EntryType,
    RaftError,
)


class ConfChangeError(RaftError):
    """An invalid membership change (the message says why)."""


def encode_conf_change(cc: ConfChangeV2) -> Entry:
    doc = {
        "transition": cc.transition.value,
        "changes": [[c.type.value, c.node_id] for c in cc.changes],
        "context": base64.b64encode(cc.context).decode(),
    }
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return Entry(term=0, index=0, type=EntryType.EntryConfChangeV2, data=data)


def decode_conf_change(entry: Entry) -> ConfChangeV2:
    if entry.type is not EntryType.EntryConfChangeV2:
        raise ConfChangeError(f"entry {entry.index} is {entry.type.value}, not EntryConfChangeV2")
    try:
        doc = json.loads(entry.data)
        return ConfChangeV2(
            transition=ConfChangeTransition(doc["transition"]),
            changes=tuple(
                ConfChangeSingle(type=ConfChangeType(t), node_id=int(i)) for t, i in doc["changes"]
            ),
            context=base64.b64decode(doc["context"]),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise ConfChangeError(f"entry {entry.index}: malformed conf change: {e}") from e


def _voter_changes(cs: ConfState, cc: ConfChangeV2) -> int:
    incoming = set(cs.voters)
    after = _apply_changes(incoming, set(cs.learners), set(), set(), cc)[0]
    return len(incoming ^ after)


def _apply_changes(
    incoming: set[int],
    learners: set[int],
    learners_next: set[int],
    outgoing: set[int],
    cc: ConfChangeV2,
) -> tuple[set[int], set[int], set[int]]:
    incoming, learners, learners_next = set(incoming), set(learners), set(learners_next)
    for c in cc.changes:
        if c.node_id == 0:
            continue  # etcd ignores changes for node 0
        if c.type is ConfChangeType.ConfChangeAddNode:
            incoming.add(c.node_id)
            learners.discard(c.node_id)
            learners_next.discard(c.node_id)
        elif c.type is ConfChangeType.ConfChangeAddLearnerNode:
            if c.node_id in learners:
                continue
            incoming.discard(c.node_id)
            if c.node_id in outgoing:
                learners_next.add(c.node_id)
            else:
                learners.add(c.node_id)
        elif c.type is ConfChangeType.ConfChangeRemoveNode:
            incoming.discard(c.node_id)
            learners.discard(c.node_id)
            learners_next.discard(c.node_id)
        elif c.type is ConfChangeType.ConfChangeUpdateNode:
            pass
    return incoming, learners, learners_next


def apply_conf_change_v2(cs: ConfState, cc: ConfChangeV2) -> ConfState:
    joint = bool(cs.voters_outgoing)
    if cc.leave_joint():
        if not joint:
            raise ConfChangeError("can't leave a non-joint config")
        return ConfState(
            voters=cs.voters,
            learners=tuple(set(cs.learners) | set(cs.learners_next)),
        )
    simple = cc.transition is ConfChangeTransition.Auto and _voter_changes(cs, cc) <= 1
    if joint:
        raise ConfChangeError("config is already joint; leave it before changing it again")
    if simple:
        incoming, learners, _ = _apply_changes(set(cs.voters), set(cs.learners), set(), set(), cc)
        if not incoming:
            raise ConfChangeError("removed all voters")
        return ConfState(voters=tuple(incoming), learners=tuple(learners))
    outgoing = set(cs.voters)
    if not outgoing:
        raise ConfChangeError("can't make a zero-voter config joint")
    incoming, learners, learners_next = _apply_changes(
        set(cs.voters), set(cs.learners), set(), outgoing, cc
    )
    if not incoming:
        raise ConfChangeError("removed all voters")
    return ConfState(
        voters=tuple(incoming),
        learners=tuple(learners),
        voters_outgoing=tuple(outgoing),
        learners_next=tuple(learners_next),
        auto_leave=cc.transition is not ConfChangeTransition.JointExplicit,
    )
