"""What a simulation is: a seed plus this configuration.

Theory of operation
-------------------
`SimConfig` is a frozen value holding every knob of a run: the cluster size,
the Raft timing, the virtual-time model (tick period, clock skew, message
and disk delays), which faults are on and how often they strike, and the
client's proposal rate.  Together with the seed it determines the run
completely, which is why the trace header records it in full (through the
shared codec) and why replay rebuilds it from there.

Virtual time is an integer count of abstract units (read them as
milliseconds).  No floats enter the schedule: probabilities are floats, but
they are only compared with draws from the seeded RNG, and every delay is an
integer drawn with `randint`.

Faults (`Fault`): `loss` (a message is dropped in flight), `dup` (a message is
delivered twice), `reorder` (links stop being FIFO and some messages are held
back long enough to be overtaken), `partition` (some directed links are cut,
symmetric or not, then healed), `crash` (a member loses its volatile state,
including writes not yet persisted, and restarts later).  With no faults the
network is a reliable FIFO network with bounded delay.

Features (each off by default, each with its own mean interval; `kubeproof
check raft` turns them all on): `snapshots` (a member snapshots its
application state and compacts its log), `conf_changes` (the leader proposes
membership changes; new members join empty, removed ones stop), `transfers`
(leadership transfers, some to unreachable targets so that they time out),
`reads` (linearizable ReadIndex reads; lease-based ones with
`read_only_lease`, which needs `check_quorum`).  `proposal_burst` makes the
client propose several entries back to back, so that they are batched.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import Any

import attrs
from attrs import AttrsInstance, field, frozen

from kubeproof import codec


class Fault(enum.Enum):
    loss = "loss"
    dup = "dup"
    reorder = "reorder"
    partition = "partition"
    crash = "crash"


ALL_FAULTS: frozenset[Fault] = frozenset(Fault)


class ConfigError(ValueError):
    """A configuration value that makes no sense; the message names it."""


def parse_faults(text: str) -> frozenset[Fault]:
    """`"loss,dup"`, `"all"` or `"none"` (or `""`) -> the fault set; unknown names raise."""
    text = text.strip()
    if text in ("all", "*"):
        return ALL_FAULTS
    if text in ("", "none"):
        return frozenset()
    out: set[Fault] = set()
    for raw in text.split(","):
        name = raw.strip()
        try:
            out.add(Fault(name))
        except ValueError:
            known = ", ".join(f.value for f in Fault)
            raise ConfigError(
                f"unknown fault {name!r}; known faults: {known} (or 'all', 'none')"
            ) from None
    return frozenset(out)


def _faults(value: Iterable[Fault | str]) -> frozenset[Fault]:
    return frozenset(Fault(v) for v in value)


def _positive(_: object, attribute: object, value: int) -> None:
    if value < 1:
        raise ConfigError(f"{getattr(attribute, 'name', '?')} must be >= 1, got {value}")


def _non_negative(_: object, attribute: object, value: int) -> None:
    if value < 0:
        raise ConfigError(f"{getattr(attribute, 'name', '?')} must be >= 0, got {value}")


def _probability(_: object, attribute: object, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigError(f"{getattr(attribute, 'name', '?')} must be in [0, 1], got {value}")


class DelayKind(enum.Enum):
    uniform = "uniform"
    """Every delay uniform in [delay_min, delay_max]."""
    exponential = "exponential"
    """delay_min plus an exponential tail of mean delay_mean, capped at delay_max."""


@frozen
class SimConfig:
    """One simulation, apart from its seed.  All times are virtual units."""

    nodes: int = field(default=3, validator=_positive)
    steps: int = field(default=10_000, validator=_positive)
    """Events to run (the trace has this many event lines unless a violation stops it)."""
    max_time: int | None = None
    """Also stop before the first event later than this virtual time."""
    faults: frozenset[Fault] = field(factory=frozenset, converter=_faults)

    # Raft's own knobs, passed into every member's RaftConfig.
    election_tick: int = field(default=10, validator=_positive)
    heartbeat_tick: int = field(default=1, validator=_positive)
    pre_vote: bool = False
    check_quorum: bool = False
    max_size_per_msg: int = field(default=1024 * 1024, validator=_non_negative)
    """Bytes of entries in one MsgApp (at least one entry is always sent: 0 means one each)."""
    max_inflight_msgs: int = field(default=256, validator=_positive)

    # Time.
    tick_interval: int = field(default=10, validator=_positive)
    clock_skew: int = field(default=2, validator=_non_negative)
    """A member's tick period is tick_interval + an offset in [-skew, +skew] (fixed per member)."""
    delay_kind: DelayKind = DelayKind.uniform
    delay_min: int = field(default=1, validator=_positive)
    delay_max: int = field(default=20, validator=_positive)
    delay_mean: int = field(default=5, validator=_positive)
    disk_delay_min: int = field(default=1, validator=_positive)
    """Time from a member having a Ready to it being persisted, sent and applied."""
    disk_delay_max: int = field(default=4, validator=_positive)

    # Faults (each only when its Fault is in `faults`).
    loss_rate: float = field(default=0.05, validator=_probability)
    dup_rate: float = field(default=0.03, validator=_probability)
    reorder_rate: float = field(default=0.05, validator=_probability)
    reorder_delay_max: int = field(default=200, validator=_positive)
    """Extra hold-back of a reordered message, uniform in [1, reorder_delay_max]."""
    fault_interval: int = field(default=400, validator=_positive)
    """Mean time between crash/partition decisions (uniform in [1, 2*mean])."""
    down_min: int = field(default=100, validator=_positive)
    down_max: int = field(default=2_000, validator=_positive)
    """How long a crashed member stays down, or a partition lasts."""
    max_down: int = field(default=-1)
    """Most members down at once; -1 means a minority ((nodes - 1) // 2)."""
    faults_until: int | None = None
    """From this virtual time on, no new faults: partitions heal, crashed members restart,
    messages are neither lost, duplicated nor reordered (the liveness tests use it)."""

    # The client.
    proposal_interval: int = field(default=50, validator=_positive)
    """Mean time between client proposals (uniform in [1, 2*mean])."""
    proposal_burst: int = field(default=1, validator=_positive)
    """At most this many proposals back to back to one member (uniform in [1, burst])."""
    max_uncommitted_entries_size: int = field(default=0, validator=_non_negative)
    """Passed to every member's RaftConfig (0: no limit)."""

    # Features beyond the paper's core (off unless asked for).
    snapshots: bool = False
    """Members snapshot their application state and compact their logs at random points."""
    snapshot_interval: int = field(default=300, validator=_positive)
    conf_changes: bool = False
    """The leader proposes membership changes (ConfChangeV2: add, remove, learners, joint)."""
    conf_change_interval: int = field(default=1_000, validator=_positive)
    max_members: int = field(default=0, validator=_non_negative)
    """Most voters + learners a configuration change may lead to (0: nodes + 2)."""
    transfers: bool = False
    """Leadership transfers to random targets (some unreachable, so they time out)."""
    transfer_interval: int = field(default=1_500, validator=_positive)
    reads: bool = False
    """Clients ask linearizable reads (ReadIndex) at random members."""
    read_interval: int = field(default=100, validator=_positive)
    read_only_lease: bool = False
    """Reads use ReadOnlyLeaseBased (needs check_quorum) instead of ReadOnlySafe."""

    def __attrs_post_init__(self) -> None:
        if self.delay_min > self.delay_max:
            raise ConfigError(f"delay_min {self.delay_min} > delay_max {self.delay_max}")
        if self.disk_delay_min > self.disk_delay_max:
            raise ConfigError(
                f"disk_delay_min {self.disk_delay_min} > disk_delay_max {self.disk_delay_max}"
            )
        if self.down_min > self.down_max:
            raise ConfigError(f"down_min {self.down_min} > down_max {self.down_max}")
        if self.clock_skew >= self.tick_interval:
            raise ConfigError(
                f"clock_skew {self.clock_skew} must be < tick_interval {self.tick_interval}"
            )
        if self.election_tick <= self.heartbeat_tick:
            raise ConfigError(
                f"election_tick {self.election_tick} must be > heartbeat_tick {self.heartbeat_tick}"
            )
        if self.max_down < -1 or self.max_down > self.nodes:
            raise ConfigError(f"max_down must be -1 or in [0, nodes], got {self.max_down}")
        if self.read_only_lease and not self.check_quorum:
            raise ConfigError("read_only_lease (lease-based reads) needs check_quorum")

    @property
    def down_limit(self) -> int:
        return (self.nodes - 1) // 2 if self.max_down == -1 else self.max_down

    @property
    def voters(self) -> tuple[int, ...]:
        """The initial configuration: members 1..nodes, all voters."""
        return tuple(range(1, self.nodes + 1))

    @property
    def member_limit(self) -> int:
        return self.max_members if self.max_members > 0 else self.nodes + 2

    def has(self, fault: Fault) -> bool:
        return fault in self.faults


def fields_to_json(config: AttrsInstance) -> dict[str, Any]:
    """Every field of an attrs configuration (defaults too), in codec form, for trace
    headers: `SimConfig`, `kvconfig.KVSimConfig`."""
    return {f.name: codec.encode(getattr(config, f.name)) for f in attrs.fields(type(config))}


def config_to_json(config: SimConfig) -> dict[str, object]:
    """The full configuration, every field present (defaults too), for trace headers."""
    return fields_to_json(config)


def config_from_json(data: object) -> SimConfig:
    """Inverse of `config_to_json`; raises `codec.CodecError` or `ConfigError` saying why."""
    return codec.decode(data, SimConfig)
