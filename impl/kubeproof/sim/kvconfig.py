"""What a replicated-store simulation is: a seed plus this configuration.

Theory of operation
-------------------
`KVSimConfig` wraps the Raft harness's `SimConfig` (cluster size, Raft
timing, delays, faults, step budget: the same knobs, the same meanings)
and adds the store's workload and the member's own settings:

* ``clients`` concurrent KV clients, each with one operation in flight at a
  time, a new one every [1, 2*op_interval] after the last finished; an
  attempt unanswered after ``request_timeout`` is retried at another member
  with the same (client id, seq), and after ``max_attempts`` unanswered
  attempts the client gives up: the operation's outcome is unknown
  (pending in the history).  "No leader" answers make it retry after a
  short back-off, without counting;
* the operation mix (``weights``): puts, linearizable and serializable
  gets, prefix ranges, deletes, transactions, leases (grant, put with a
  lease, keep-alive, revoke: a lease nobody keeps alive expires), and
  compactions;
* ``watchers`` watch clients, each watching the key space from revision 1,
  moving to another member every [1, 2*watch_move_interval] (and whenever
  their member crashes), resuming from the last revision they received;
* the members' snapshot interval (``snapshot_count`` entries, keeping
  ``snapshot_catchup_entries`` behind), small so that snapshots are taken,
  sent and restored in every run;
* ``time_unit``: seconds per virtual time unit (0.01: a 10-unit tick is
  etcd's 100 ms heartbeat, and lease TTLs of 2-8 s span hundreds of units).

The `SimConfig` part's ``proposal_interval`` is not used: the store's
clients replace the Raft harness's anonymous client.
"""

from __future__ import annotations

from typing import Any

from attrs import field, frozen

from kubeproof import codec

from .config import ConfigError, SimConfig, _non_negative, _positive, fields_to_json

OP_KINDS = (
    "put",
    "get",
    "get_serializable",
    "range",
    "delete",
    "txn",
    "lease",
    "compact",
)

DEFAULT_WEIGHTS = (25, 20, 8, 7, 8, 14, 12, 5)


def _weights(_: object, attribute: object, value: tuple[int, ...]) -> None:
    if len(value) != len(OP_KINDS) or any(w < 0 for w in value) or not any(value):
        raise ConfigError(
            f"weights must be {len(OP_KINDS)} non-negative numbers, not all 0 "
            f"(for {', '.join(OP_KINDS)}), got {value!r}"
        )


def _tuple(v: Any) -> tuple[int, ...]:
    return tuple(int(x) for x in v)


@frozen
class KVSimConfig:
    sim: SimConfig = field(factory=lambda: SimConfig(steps=6000))
    clients: int = field(default=4, validator=_positive)
    keys: int = field(default=4, validator=_positive)
    op_interval: int = field(default=30, validator=_positive)
    request_timeout: int = field(default=250, validator=_positive)
    max_attempts: int = field(default=6, validator=_positive)
    weights: tuple[int, ...] = field(default=DEFAULT_WEIGHTS, converter=_tuple, validator=_weights)
    watchers: int = field(default=2, validator=_non_negative)
    watch_move_interval: int = field(default=400, validator=_positive)
    snapshot_count: int = field(default=30, validator=_non_negative)
    snapshot_catchup_entries: int = field(default=8, validator=_non_negative)
    lease_ttl_min: int = field(default=2, validator=_positive)
    lease_ttl_max: int = field(default=8, validator=_positive)
    time_unit: float = 0.01
    lincheck_every: int = field(default=0, validator=_non_negative)
    """Also check linearizability of the history so far every N events (0: at the end only)."""
    lincheck_budget: int = field(default=2_000_000, validator=_positive)
    """Configurations the linearizability search may explore before it answers 'unknown'."""

    def __attrs_post_init__(self) -> None:
        if self.lease_ttl_min > self.lease_ttl_max:
            raise ConfigError(
                f"lease_ttl_min {self.lease_ttl_min} > lease_ttl_max {self.lease_ttl_max}"
            )
        if not self.time_unit > 0:
            raise ConfigError(f"time_unit must be > 0, got {self.time_unit}")

    @property
    def voters(self) -> tuple[int, ...]:
        return self.sim.voters

    @property
    def steps(self) -> int:
        return self.sim.steps

    def key(self, i: int) -> bytes:
        return b"k%d" % i


def kv_config_to_json(config: KVSimConfig) -> dict[str, Any]:
    return fields_to_json(config)


def kv_config_from_json(data: Any) -> KVSimConfig:
    return codec.decode(data, KVSimConfig)
