"""Swarm testing: every seed draws its own variation of the configuration.

Theory of operation
-------------------
One configuration explores one corner of the behaviour space; a bug that
needs, say, one entry per MsgApp and a high loss rate never shows under the
defaults.  Swarm testing (Groce et al., ISSTA 2012; TigerBeetle's VOPR does
the same) lets each seed draw its own knobs, from the seed alone
(`derive_seed(seed, "swarm")`), and may also leave some of the requested
faults out, since the absence of one fault can be what lets another bite.

The drawn configuration is a plain `SimConfig`: the trace header records it
in full, so a swarm run replays by seed+config like any other.  The number
of members and the step budget are never varied, nor is which features
(snapshots, membership changes, transfers, reads, lease reads) are on; PreVote
and CheckQuorum are each switched on half the time when the base has them
off (a base that asks for one keeps it), and the features' intervals, the
proposal burst and the uncommitted-size limit are drawn too.
"""

from __future__ import annotations

import random

import attrs

from .config import SimConfig
from .seeds import derive_seed


def swarm_config(base: SimConfig, seed: int) -> SimConfig:
    rng = random.Random(derive_seed(seed, "swarm"))
    kept = frozenset(f for f in sorted(base.faults, key=lambda f: f.value) if rng.random() < 0.75)
    delay_max = rng.choice((5, 20, 60))
    down_max = rng.choice((300, 1_000, 3_000))
    return attrs.evolve(
        base,
        faults=kept,
        loss_rate=rng.choice((0.01, 0.05, 0.2)),
        dup_rate=rng.choice((0.01, 0.05, 0.2)),
        reorder_rate=rng.choice((0.02, 0.1, 0.3)),
        delay_min=1,
        delay_max=delay_max,
        disk_delay_min=1,
        disk_delay_max=rng.choice((1, 4, 20)),
        fault_interval=rng.choice((50, 200, 800)),
        down_min=min(20, down_max),
        down_max=down_max,
        proposal_interval=rng.choice((10, 50, 200)),
        max_size_per_msg=rng.choice((0, 64, 1024 * 1024)),
        max_inflight_msgs=rng.choice((1, 4, 256)),
        # Drawn after the knobs above, so that those keep their values per seed.
        pre_vote=base.pre_vote or rng.random() < 0.5,
        check_quorum=base.check_quorum or rng.random() < 0.5,
        proposal_burst=rng.choice((1, 1, 4, 16)),
        max_uncommitted_entries_size=rng.choice((0, 0, 0, 256)),
        snapshot_interval=rng.choice((50, 300, 1_000)),
        conf_change_interval=rng.choice((200, 1_000, 3_000)),
        transfer_interval=rng.choice((300, 1_500, 5_000)),
        read_interval=rng.choice((20, 100, 400)),
    )
