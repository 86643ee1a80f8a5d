"""The simulated operator: which membership change to ask a leader for next.

Theory of operation
-------------------
`choose_change` looks at the configuration in force at the leader (the one
a change would apply to: a leader accepts a change only once every earlier
one in its log is applied) and draws one `ConfChangeV2`, from the
scheduler's RNG only.  New members always get a fresh id (`fresh()`): etcd
never reuses a node id, and neither does the harness.

| configuration        | operations drawn from (uniformly)                                  |
| -------------------- | ------------------------------------------------------------------ |
| joint, explicit      | leave it (the empty change)                                         |
| joint, auto-leave    | leave it explicitly, or nothing (the leader leaves by itself)       |
| simple               | add a voter / a learner (below the member limit); promote or remove |
|                      | a learner; remove a voter, the leader itself, or demote a voter     |
|                      | (with at least two voters, so that shrinking to one is reached but  |
|                      | never to none); replace a voter by a new one (two voter changes in  |
|                      | one: joint); swap a learner and a voter (joint)                     |

A change of at most one voter goes in with the transition Auto half the
time (a simple change) and JointImplicit or JointExplicit otherwise, so
single-voter joint configurations, explicit leaves and auto-leaves all
happen; a change of two voters is always joint (Auto, JointImplicit or
JointExplicit).
"""

from __future__ import annotations

import random
from collections.abc import Callable

from kubeproof.raft import (
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfChangeV2,
    ConfState,
)

_ADD = ConfChangeType.ConfChangeAddNode
_LEARNER = ConfChangeType.ConfChangeAddLearnerNode
_REMOVE = ConfChangeType.ConfChangeRemoveNode
_AUTO = ConfChangeTransition.Auto
_SINGLE_TRANSITIONS = (
    _AUTO,
    _AUTO,
    ConfChangeTransition.JointImplicit,
    ConfChangeTransition.JointExplicit,
)
_JOINT_TRANSITIONS = (_AUTO, ConfChangeTransition.JointImplicit, ConfChangeTransition.JointExplicit)


def _one(t: ConfChangeType, node: int) -> ConfChangeSingle:
    return ConfChangeSingle(type=t, node_id=node)


def choose_change(
    rng: random.Random,
    cs: ConfState,
    leader: int,
    fresh: Callable[[], int],
    member_limit: int,
) -> ConfChangeV2 | None:
    """One membership change for a leader whose configuration is `cs` (see the table)."""
    if cs.voters_outgoing:
        if cs.auto_leave and rng.random() < 0.5:
            return None
        return ConfChangeV2()
    voters = sorted(cs.voters)
    learners = sorted(cs.learners)
    room = len(voters) + len(learners) < member_limit
    ops: list[str] = []
    if room:
        ops += ["add-voter", "add-learner"]
    if learners:
        ops += ["promote", "remove-learner"]
    if len(voters) > 1:
        ops += ["remove-voter", "demote"]
        if leader in voters:
            ops.append("remove-leader")
    if room and voters:
        ops.append("replace")
    if learners and len(voters) > 1:
        ops.append("swap")
    if not ops:
        return None
    op = rng.choice(ops)
    changes: tuple[ConfChangeSingle, ...]
    if op == "add-voter":
        changes = (_one(_ADD, fresh()),)
    elif op == "add-learner":
        changes = (_one(_LEARNER, fresh()),)
    elif op == "promote":
        changes = (_one(_ADD, rng.choice(learners)),)
    elif op == "remove-learner":
        changes = (_one(_REMOVE, rng.choice(learners)),)
    elif op == "remove-voter":
        changes = (_one(_REMOVE, rng.choice(voters)),)
    elif op == "remove-leader":
        changes = (_one(_REMOVE, leader),)
    elif op == "demote":
        changes = (_one(_LEARNER, rng.choice(voters)),)
    elif op == "replace":
        changes = (_one(_ADD, fresh()), _one(_REMOVE, rng.choice(voters)))
        return ConfChangeV2(transition=rng.choice(_JOINT_TRANSITIONS), changes=changes)
    else:  # swap
        changes = (_one(_ADD, rng.choice(learners)), _one(_LEARNER, rng.choice(voters)))
        return ConfChangeV2(transition=rng.choice(_JOINT_TRANSITIONS), changes=changes)
    return ConfChangeV2(transition=rng.choice(_SINGLE_TRANSITIONS), changes=changes)
